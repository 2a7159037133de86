"""The discord.py client of the bot: default intents only (no message content, no member
list), raw reaction events (nothing depends on the message cache), the slash commands synced
on start, and the delivery loop of the monthly summaries.

discord.py has no documented setting for its hosts: every REST call is built on
`discord.http.Route.BASE` and the websocket starts at `DiscordWebSocket.DEFAULT_GATEWAY`, so
`use_hosts` sets both, for the whole process, from FLATTR_DISCORD_API_URL and
FLATTR_DISCORD_GATEWAY_URL.
"""

import asyncio
import logging

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bots.client import GatewayClient
from bots.discord import commands, reactions
from bots.discord.delivery import Deliverer
from bots.discord.guards import PerUser
from bots.discord.servers import Servers
from bots.discord.settings import DiscordSettings
from bots.memory import Memory
from bots.pending import Pending

log = logging.getLogger("flattr.bots.discord")
MAX_RATELIMIT_SECONDS = 30.0  # a longer 429 is raised (discord.py's least), not slept
AUTHOR_TTL_SECONDS = 30 * 24 * 3600


def use_hosts(settings: DiscordSettings) -> None:
    Route.BASE = settings.discord_api_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class FlattrBot(discord.Client):
    def __init__(self, settings: DiscordSettings, *, gateway: GatewayClient, memory: Memory,
                 pending: Pending | None = None, background: bool = True) -> None:
        use_hosts(settings)
        # The bot has no voice: discord.py's warnings that voice's libraries are missing are
        # noise in its log.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(intents=discord.Intents.default(),
                         max_ratelimit_timeout=MAX_RATELIMIT_SECONDS)
        self.settings = settings
        self.gateway = gateway
        self.memory = memory
        self.pending = pending or Pending()
        self.servers = Servers(gateway, settings.discord_emoji)
        self.limits = PerUser(settings.discord_reaction_burst,
                              settings.discord_reaction_refill_seconds)
        # A member's work on a thing, the owed work included, one at a time and in order.
        self.locks = self.pending.locks
        self.deliverer = Deliverer(self, gateway, settings.public_url,
                                   interval_seconds=settings.discord_dm_interval_seconds)
        self.answer_within_seconds = 2.0  # then the answer is deferred (Discord waits 3 s)
        self.tree = app_commands.CommandTree(self)
        commands.add_to(self.tree)
        self.tree.on_error = commands.failed
        self._background = background
        self._tasks: list[asyncio.Task] = []

    async def setup_hook(self) -> None:
        """After login: the commands synced to Discord, the loops started."""
        synced = await self.tree.sync()
        log.info("%d application commands synced", len(synced))
        if self._background:
            self._tasks = [
                asyncio.create_task(self.deliverer.run_forever(), name="discord delivery"),
                asyncio.create_task(self.pending.run_forever(), name="owed flattrs")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        # discord.py waits a while after READY for the servers before it dispatches `ready`;
        # closed meanwhile, that wait would wake to a client without a loop and fail.
        waiting = getattr(self._connection, "_ready_task", None)
        if waiting is not None and not waiting.done():
            waiting.cancel()
        await super().close()

    async def on_ready(self) -> None:
        log.info("Discord bot %s ready in %d servers", self.user, len(self.guilds))

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await reactions.added(self, payload)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await reactions.removed(self, payload)

    def statement_link(self, period: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}/statements/{period}"

    async def is_bot(self, user_id: int) -> bool:
        """Whether a user is a bot, or no user at all (a webhook's id): from the cache,
        else asked once and remembered."""
        cached = self.get_user(user_id)
        if cached is not None:
            return cached.bot
        key = f"bot:{user_id}"
        known = await self.memory.get(key)
        if known is not None:
            return known == "1"
        try:
            found = await self.fetch_user(user_id)
        except discord.NotFound:
            answer = True
        except discord.HTTPException as error:  # not known now: the gateway decides
            log.warning("user %s could not be looked up: %s", user_id, error)
            return False
        else:
            answer = found.bot
        await self.memory.put(key, "1" if answer else "0", AUTHOR_TTL_SECONDS)
        return answer
