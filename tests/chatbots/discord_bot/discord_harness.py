"""The real discord.py client of the bot, logged in against the Discord stand-in (REST and
websocket gateway on loopback), and a real gateway (each backend) behind the misbehaving
proxy. Reactions and commands arrive as dispatches on the websocket, as Discord sends them."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest

from bots.client import GatewayClient
from bots.discord.bot import FlattrBot
from bots.discord.settings import DiscordSettings
from bots.memory import LruMemory, Memory
from bots.pending import Pending
from discord_standin import BOT_TOKEN, DiscordStandIn, Events
from support import wait_until

PUBLIC_URL = "https://flattr.example"
GUILD, CHANNEL, OTHER_CHANNEL = 800000000000000001, 800000000000000011, 800000000000000012
GUILD_EMOJI = 700000000000000077  # the server's own emoji "flattr"


class ObservedBot(FlattrBot):
    """The bot, counting the reaction events it finished and keeping every error that
    discord.py would only have logged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reactions_done = 0
        self.errors: list[str] = []

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        try:
            await super().on_raw_reaction_add(payload)
        finally:
            self.reactions_done += 1

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        try:
            await super().on_raw_reaction_remove(payload)
        finally:
            self.reactions_done += 1

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        import traceback

        self.errors.append(f"{event_method}: {traceback.format_exc()}")


@dataclass
class DiscordBot:
    bot: ObservedBot
    api: DiscordStandIn
    events: Events
    reactions_sent: int = 0
    answered: int = 0
    seen: list[dict] = field(default_factory=list)

    async def dispatch(self, event: str, data: dict) -> None:
        await self.api.dispatch(event, data)

    async def react(self, user_id: int, message_id: int, author_id: int | None, *,
                    channel_id: int = CHANNEL, **options: Any) -> None:
        """A reaction added, handled by the bot to the end."""
        await self._reaction("MESSAGE_REACTION_ADD", self.events.reaction_add(
            user_id, channel_id, message_id, author_id, **options))

    async def unreact(self, user_id: int, message_id: int, *, channel_id: int = CHANNEL,
                      **options: Any) -> None:
        await self._reaction("MESSAGE_REACTION_REMOVE", self.events.reaction_remove(
            user_id, channel_id, message_id, **options))

    async def _reaction(self, event: str, data: dict) -> None:
        self.reactions_sent += 1
        await self.api.dispatch(event, data)
        await self.reactions_handled()

    async def reactions_handled(self, seconds: float = 10.0) -> None:
        async def done() -> bool:
            return self.bot.reactions_done >= self.reactions_sent

        assert await wait_until(done, seconds), (self.bot.reactions_done, self.reactions_sent)

    async def command(self, user_id: int, name: str, seconds: float = 10.0,
                      **options: Any) -> dict:
        """A slash command (string options); its final answer: the callback's or the
        follow-up's `data`, with `type`."""
        extra = {k: options.pop(k) for k in ("channel_id", "permissions", "in_dm")
                 if k in options}
        return await self.interact(self.events.command(user_id, name, options, **extra),
                                   seconds)

    async def interact(self, data: dict, seconds: float = 10.0) -> dict:
        await self.api.dispatch("INTERACTION_CREATE", data)
        self.answered += 1
        while True:
            answers = await self.api.wait_answers(self.answered, seconds)
            if answers[-1]["type"] != 5:  # deferred: the follow-up comes next
                return answers[-1]
            self.answered += 1

    async def text(self, user_id: int, name: str, **options: Any) -> str:
        answer = await self.command(user_id, name, **options)
        assert answer["flags"] & 64, answer  # ephemeral
        return answer["content"]


@pytest.fixture
async def discord_api() -> AsyncIterator[DiscordStandIn]:
    api = DiscordStandIn(heartbeat_ms=250)
    api.add_guild(GUILD, CHANNEL, OTHER_CHANNEL, emojis={GUILD_EMOJI: "flattr"})
    await api.start()
    yield api
    await api.close()


def bot_settings(api: DiscordStandIn, gateway_url: str, token: str, **more) -> DiscordSettings:
    return DiscordSettings(**{
        "discord_token": BOT_TOKEN, "discord_api_url": api.api_url,
        "discord_gateway_url": api.gateway_url, "gateway_url": gateway_url,
        "gateway_token": token, "redis_url": None, "public_url": PUBLIC_URL,
        "discord_dm_interval_seconds": 0.05, **more})


@pytest.fixture
def memory() -> Memory:
    return LruMemory(max_entries=1000)


@pytest.fixture
def discord_settings(discord_api, proxy, bot_token):
    def make(**more) -> DiscordSettings:
        return bot_settings(discord_api, proxy.url, bot_token, **more)

    return make


@contextlib.asynccontextmanager
async def running_bot(api: DiscordStandIn, settings: DiscordSettings, gateway: GatewayClient,
                      memory: Memory) -> AsyncIterator[DiscordBot]:
    """The bot logged in and connected (its delivery loop not started: tests run rounds)."""
    bot = ObservedBot(settings, gateway=gateway, memory=memory, background=False,
                      pending=Pending(first_wait_seconds=0.1, max_wait_seconds=0.5))
    owed = asyncio.create_task(bot.pending.run_forever())
    running = asyncio.create_task(bot.start(BOT_TOKEN))
    connected = asyncio.create_task(api.connected())
    await asyncio.wait({running, connected}, return_when=asyncio.FIRST_COMPLETED)
    try:
        if running.done():  # it could not start: its error
            connected.cancel()
            await running
        yield DiscordBot(bot, api, Events(GUILD))
    finally:
        owed.cancel()
        await bot.close()
        await asyncio.wait_for(running, 10)
    assert bot.errors == [], bot.errors


@pytest.fixture
async def discord_bot(discord_api, discord_settings, gateway: GatewayClient,
                      memory) -> AsyncIterator[DiscordBot]:
    async with running_bot(discord_api, discord_settings(), gateway, memory) as made:
        yield made
    await memory.close()
