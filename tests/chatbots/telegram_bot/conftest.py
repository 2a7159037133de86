"""The real PTB Application of the bot against the Bot API stand-in, and a real gateway
(each backend) behind the misbehaving proxy; updates are fed to `process_update`."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from telegram import Update
from telegram.ext import Application, ContextTypes

from bots.client import GatewayClient
from bots.memory import LruMemory, Memory
from bots.pending import Pending
from bots.telegram.app import build_application, started
from bots.telegram.services import Services, services
from bots.telegram.settings import TelegramSettings
from telegram_standin import BOT_TOKEN, BotApiStandIn, Updates

PUBLIC_URL = "https://flattr.example"


@dataclass
class TelegramBot:
    app: Application
    api: BotApiStandIn
    updates: Updates
    errors: list[BaseException] = field(default_factory=list)

    @property
    def services(self) -> Services:
        return services(self.app)

    async def feed(self, *updates: dict) -> None:
        for data in updates:
            await self.app.process_update(Update.de_json(data, self.app.bot))

    async def feed_at_once(self, *updates: dict) -> None:
        """As the Application takes updates from its queue: each started in order, through
        the bot's update processor, all running together."""
        parsed = [Update.de_json(data, self.app.bot) for data in updates]
        await asyncio.gather(*(self.app.update_processor.process_update(
            update, self.app.process_update(update)) for update in parsed))

    async def start(self, user_id: int) -> None:
        """The user opens the private chat and presses Start: a member of their own."""
        await self.feed(self.updates.command(user_id, "/start"))

    def said_to(self, user_id: int) -> list[str]:
        return self.api.sent_to(user_id)


@pytest.fixture
async def bot_api() -> AsyncIterator[BotApiStandIn]:
    api = await BotApiStandIn().start()
    yield api
    await api.close()


def bot_settings(api: BotApiStandIn, gateway_url: str, token: str, **more) -> TelegramSettings:
    return TelegramSettings(telegram_token=BOT_TOKEN, telegram_base_url=api.root,
                            gateway_url=gateway_url, gateway_token=token, redis_url=None,
                            public_url=PUBLIC_URL, telegram_count_edit_seconds=0.3, **more)


@pytest.fixture
def telegram_settings(bot_api, proxy, bot_token):
    """The bot's settings for the stand-in and the gateway behind the proxy."""

    def make(**more) -> TelegramSettings:
        return bot_settings(bot_api, proxy.url, bot_token, **more)

    return make


@pytest.fixture
def memory() -> Memory:
    return LruMemory(max_entries=1000)


@pytest.fixture
async def telegram(bot_api, gateway: GatewayClient, telegram_settings,
                   memory) -> AsyncIterator[TelegramBot]:
    settings = telegram_settings()
    app = build_application(settings, gateway=gateway, memory=memory, polling=False,
                            pending=Pending(first_wait_seconds=0.1, max_wait_seconds=0.5))
    made = TelegramBot(app, bot_api, Updates())

    async def record(_update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        made.errors.append(context.error)

    app.error_handlers.clear()
    app.add_error_handler(record)
    async with app:
        await started(app)
        yield made
        await made.services.counts.close()
    await memory.close()
    assert made.errors == [], made.errors
