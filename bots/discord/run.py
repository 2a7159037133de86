"""`flattr bot discord`: the bot with its delivery loop until SIGINT or SIGTERM."""

import asyncio
import logging
import sys
from collections.abc import Callable

import discord

from bots.client import GatewayClient
from bots.command import USAGE, run_until_stopped, settings_or_say
from bots.discord.bot import FlattrBot
from bots.discord.settings import DiscordSettings
from bots.memory import memory_for

REFUSED = 1
COMMAND = "flattr bot discord"
NEEDED = (
    ("discord_token", "the bot token of your application (Discord Developer Portal, Bot)"),
    ("gateway_token", "a token with the bot scope (flattr token create HANDLE --scopes bot)"),
)


async def serve(settings: DiscordSettings, stop: asyncio.Event) -> None:
    """Run until `stop` is set (or Discord ends the session for good)."""
    if settings.discord_token is None:
        raise ValueError("FLATTR_DISCORD_TOKEN is not set")
    memory = memory_for(settings.redis_url, namespace="flattr-discord")
    token = settings.gateway_token.get_secret_value() if settings.gateway_token else ""
    try:
        async with GatewayClient(settings.gateway_url, token,
                                 user_agent="flattr-discord-bot") as gateway:
            bot = FlattrBot(settings, gateway=gateway, memory=memory)
            async with bot:
                running = asyncio.create_task(
                    bot.start(settings.discord_token.get_secret_value()), name="discord")
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                await bot.close()
                await running  # its error, if it ended by one
    finally:
        await memory.close()


def main(configure_logging: Callable[[str, str], None] | None = None) -> int:
    """The command's body: 2 with one line on standard error when it cannot start, 1 when
    Discord refuses the token. `configure_logging(FLATTR_LOG_FORMAT, FLATTR_LOG_LEVEL)` sets
    up the log lines (the command gives the gateway's, so that both write alike)."""
    settings = settings_or_say(DiscordSettings, COMMAND, NEEDED)
    if settings is None:
        return USAGE
    if configure_logging is not None:
        configure_logging(settings.log_format, settings.log_level)
    else:
        logging.basicConfig(level=settings.log_level,
                            format="%(asctime)s %(levelname)s %(message)s")
    try:
        run_until_stopped(serve, settings)
    except discord.LoginFailure:
        print(f"{COMMAND}: Discord refused FLATTR_DISCORD_TOKEN", file=sys.stderr)
        return REFUSED
    except discord.PrivilegedIntentsRequired:  # none asked for; said plainly should it happen
        print(f"{COMMAND}: Discord asks for privileged intents the bot does not use",
              file=sys.stderr)
        return REFUSED
    return 0
