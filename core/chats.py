"""The bots' settings of a chat: its flattr emoji, its owner and the channels it flattrs in.

A chat is a Telegram chat (`telegram:-1001234`, negative for groups and channels) or a
Discord server (`discord:<guild id>`). A chat without a row has the defaults: the bot's own
emoji, no owner, every channel.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.dialect import insert_updating_conflicts
from core.errors import InvalidChat, InvalidIdentity
from core.members import parse_identity
from core.schema import chat_settings

CHAT_PATTERN = re.compile(r"telegram:-?[1-9][0-9]{0,19}|discord:[1-9][0-9]{0,19}", re.ASCII)
CHANNEL_PATTERN = re.compile(r"[1-9][0-9]{0,19}", re.ASCII)
MAX_EMOJI_LENGTH = 64  # a Discord server's own: a name of up to 32, ":" and its id
MAX_CHANNELS = 100


@dataclass(frozen=True)
class ChatSettings:
    chat: str
    emoji: str | None  # None: the bot's default
    owner: str | None  # the chat identity whose member owns the chat's posts
    channels: tuple[str, ...]  # empty: every channel
    updated_at: datetime | None  # None: never set, the defaults


def parse_chat(text: str) -> str:
    if not isinstance(text, str) or not CHAT_PATTERN.fullmatch(text):
        raise InvalidChat(f"{str(text)[:40]!r} is not a chat: expected telegram:<chat id> "
                          "(negative for groups and channels) or discord:<server id>")
    return text


def _emoji(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_EMOJI_LENGTH:
        raise InvalidChat(f"an emoji has 1 to {MAX_EMOJI_LENGTH} characters")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidChat("an emoji has no spaces nor control characters")
    return value


def _owner(chat: str, value: str | None) -> str | None:
    if value is None:
        return None
    owner = parse_identity(value)
    if owner.split(":")[0] != chat.split(":")[0]:
        raise InvalidIdentity(f"the owner of {chat} is an identity of the same network, "
                              f"not {owner}")
    return owner


def _channels(values: list[str]) -> tuple[str, ...]:
    if not isinstance(values, list | tuple) or len(values) > MAX_CHANNELS:
        raise InvalidChat(f"channels is a list of at most {MAX_CHANNELS} ids")
    for value in values:
        if not isinstance(value, str) or not CHANNEL_PATTERN.fullmatch(value):
            raise InvalidChat(f"{str(value)[:40]!r} is not a channel id (digits, no leading 0)")
    return tuple(dict.fromkeys(values))  # each once, in the order given


async def settings_of(conn: AsyncConnection, chat: str) -> ChatSettings:
    chat = parse_chat(chat)
    row = (await conn.execute(
        select(chat_settings).where(chat_settings.c.chat == chat))).first()
    if row is None:
        return ChatSettings(chat, None, None, (), None)
    return ChatSettings(chat, row.emoji, row.owner_identity,
                        tuple(row.channels.split(",")) if row.channels else (), row.updated_at)


async def change_settings(
    conn: AsyncConnection, chat: str, changes: dict, now: datetime | None = None
) -> ChatSettings:
    """Set what `changes` names (emoji, owner, channels); the rest stays as it is.

    One statement: two bots changing different settings at once both keep their change.
    """
    chat = parse_chat(chat)
    unknown = set(changes) - {"emoji", "owner", "channels"}
    if unknown:
        raise InvalidChat(f"a chat has no setting {sorted(unknown)[0]!r}")
    columns: dict = {}
    if "emoji" in changes:
        columns["emoji"] = _emoji(changes["emoji"])
    if "owner" in changes:
        columns["owner_identity"] = _owner(chat, changes["owner"])
    if "channels" in changes:
        columns["channels"] = ",".join(_channels(changes["channels"]))
    if not columns:
        return await settings_of(conn, chat)
    columns["updated_at"] = now or utc_now()
    defaults = {"chat": chat, "emoji": None, "owner_identity": None, "channels": ""}
    await conn.execute(insert_updating_conflicts(
        conn, chat_settings, ["chat"], {**defaults, **columns}, columns))
    return await settings_of(conn, chat)
