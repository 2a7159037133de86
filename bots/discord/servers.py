"""A server's settings (its flattr emoji and the channels the bot flattrs in), read from the
gateway through a short cache, and the emoji as Discord names them.

A server's emoji is stored as the gateway keeps it: a standard emoji as itself (💸), a
server's own emoji as `name:id`. A reaction matches by the custom emoji's id (a renamed
emoji still counts) or by the standard emoji, with or without its variation selector.
"""

import re

import discord

from bots.chats import ChatCache
from bots.client import ChatSettings, GatewayClient

CUSTOM = re.compile(r"^(?P<name>[A-Za-z0-9_]{2,32}):(?P<id>[0-9]{15,21})$")
MENTION = re.compile(r"^<a?:(?P<name>[A-Za-z0-9_]{2,32}):(?P<id>[0-9]{15,21})>$")
VARIATION = "\ufe0f"
MAX_STANDARD_LENGTH = 16  # code points: flags, keycaps and family sequences fit


def server_key(guild_id: int) -> str:
    return f"discord:{guild_id}"


def parse_emoji(text: str) -> str | None:
    """The emoji as the gateway keeps it, from what a user typed: `<:name:id>`,
    `<a:name:id>`, `name:id` or a standard emoji; None when it is none of these."""
    text = text.strip()
    custom = CUSTOM.match(text) or MENTION.match(text)
    if custom is not None:
        return f"{custom['name']}:{custom['id']}"
    if not text or len(text) > MAX_STANDARD_LENGTH or any(c.isspace() for c in text):
        return None
    if any(c.isascii() and c not in "#*0123456789" for c in text):
        return None
    if not any(ord(c) >= 0x2000 for c in text):
        return None
    return text


def custom_id(emoji: str) -> int | None:
    """The id of a server's own emoji (`name:id`); None for a standard emoji."""
    custom = CUSTOM.match(emoji)
    return int(custom["id"]) if custom is not None else None


def known(guild: discord.Guild | None) -> bool:
    """Whether discord.py knows the server's emoji and channels (from GUILD_CREATE)."""
    return guild is not None and not guild.unavailable


def is_the_servers_emoji(guild: discord.Guild, emoji: str | None) -> bool:
    """A standard emoji (or none) is everybody's; a custom one must be the server's."""
    wanted = custom_id(emoji or "")
    return wanted is None or wanted in {e.id for e in guild.emojis}


def not_the_servers_channels(guild: discord.Guild, channels: list[str]) -> list[str]:
    return [c for c in channels if guild.get_channel_or_thread(int(c)) is None]


def shown(emoji: str) -> str:
    """How a message shows the emoji: `<:name:id>` for a server's own."""
    return f"<:{emoji}>" if CUSTOM.match(emoji) else emoji


def matches(emoji: str, reaction: discord.PartialEmoji) -> bool:
    wanted = custom_id(emoji)
    if wanted is not None:
        return reaction.id is not None and reaction.id == wanted
    return reaction.id is None and (reaction.name or "").replace(VARIATION, "") == (
        emoji.replace(VARIATION, ""))


class Servers:
    """The servers' settings through the bots' chat cache, with the bot's default emoji."""

    def __init__(self, gateway: GatewayClient, default_emoji: str) -> None:
        self.cache = ChatCache(gateway)
        self.default_emoji = default_emoji

    async def settings(self, guild_id: int) -> ChatSettings:
        return await self.cache.get(server_key(guild_id))

    def remember(self, settings: ChatSettings) -> None:
        self.cache.remember(settings)

    def emoji_of(self, settings: ChatSettings) -> str:
        return settings.emoji or self.default_emoji

    async def counts(self, guild_id: int, channel_id: int,
                     reaction: discord.PartialEmoji) -> bool:
        """Whether this reaction in this channel flattrs, by the server's settings."""
        settings = await self.settings(guild_id)
        if settings.channels and str(channel_id) not in settings.channels:
            return False
        return matches(self.emoji_of(settings), reaction)
