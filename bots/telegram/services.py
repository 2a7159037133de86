"""What the handlers share: the gateway client, the memory, the settings, and the chats'
settings read through a short cache. Kept in `application.bot_data`, made by `app.py`."""

import time
from dataclasses import dataclass, field

from telegram import Chat, User
from telegram.ext import Application, ContextTypes

from bots.client import ChatSettings, GatewayClient, GatewayUnavailable, RateLimited
from bots.memory import Memory
from bots.pending import Pending
from bots.telegram.counts import CountEditor
from bots.telegram.settings import TelegramSettings

SERVICES = "flattr"
CHAT_CACHE_SECONDS = 30.0
CHAT_CACHE_ENTRIES = 10_000
# How long the bot remembers the author of a post, and that someone talked to it.
AUTHOR_TTL_SECONDS = 90 * 24 * 3600
TALKED_TTL_SECONDS = 400 * 24 * 3600


@dataclass
class Services:
    gateway: GatewayClient
    memory: Memory
    settings: TelegramSettings
    pending: Pending
    counts: CountEditor
    bot_username: str = ""
    _chats: dict[str, tuple[ChatSettings, float]] = field(default_factory=dict)

    async def chat(self, chat_id: int) -> ChatSettings:
        """The chat's settings from the gateway, at most CHAT_CACHE_SECONDS old; older ones
        (or the defaults) while the gateway cannot be reached."""
        key = chat_key(chat_id)
        found = self._chats.get(key)
        if found is not None and found[1] > time.monotonic():
            return found[0]
        try:
            fresh = await self.gateway.chat_settings(key)
        except (GatewayUnavailable, RateLimited):
            return found[0] if found is not None else ChatSettings(key, None, None, ())
        self.remember_chat(fresh)
        return fresh

    def remember_chat(self, settings: ChatSettings) -> None:
        if len(self._chats) >= CHAT_CACHE_ENTRIES:
            self._chats.clear()
        self._chats[settings.chat] = (settings, time.monotonic() + CHAT_CACHE_SECONDS)

    async def emoji(self, chat_id: int) -> str:
        return (await self.chat(chat_id)).emoji or self.settings.telegram_emoji

    def start_link(self, payload: str | None = None) -> str:
        """The deep link that opens a private chat with the bot (and sends /start)."""
        link = f"https://t.me/{self.bot_username}"
        return f"{link}?start={payload}" if payload else f"{link}?start=join"

    def statement_link(self, period: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}/statements/{period}"


def services(context: ContextTypes.DEFAULT_TYPE | Application) -> Services:
    application = context if isinstance(context, Application) else context.application
    return application.bot_data[SERVICES]


def identity(user: User | int) -> str:
    return f"telegram:{user if isinstance(user, int) else user.id}"


def chat_key(chat: Chat | int) -> str:
    return f"telegram:{chat if isinstance(chat, int) else chat.id}"


def thing_of(chat_id: int, message_id: int) -> str:
    return f"telegram:{chat_id}/{message_id}"
