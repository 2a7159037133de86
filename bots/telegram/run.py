"""`flattr bot telegram`: the bot with its delivery loop, by long polling or a webhook,
until SIGINT or SIGTERM."""

import asyncio
import contextlib
import hmac
import logging
import signal
import sys
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import ValidationError
from telegram import Update
from telegram.error import InvalidToken, NetworkError
from telegram.ext import Application

from bots.client import GatewayClient
from bots.memory import memory_for
from bots.telegram.app import ALLOWED_UPDATES, build_application, started
from bots.telegram.delivery import Deliverer
from bots.telegram.services import services
from bots.telegram.settings import TelegramSettings

log = logging.getLogger("flattr.bots.telegram")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
USAGE = 2


async def serve(settings: TelegramSettings, stop: asyncio.Event) -> None:
    """Run until `stop` is set: updates in, summaries out, owed flattrs retried."""
    memory = memory_for(settings.redis_url, namespace="flattr-telegram")
    token = settings.gateway_token.get_secret_value() if settings.gateway_token else ""
    try:
        async with GatewayClient(settings.gateway_url, token,
                                 user_agent="flattr-telegram-bot") as gateway:
            application = build_application(settings, gateway=gateway, memory=memory,
                                            polling=settings.telegram_webhook_url is None)
            async with application:
                await _run(application, settings, gateway, stop)
    finally:
        await memory.close()


async def _run(application: Application, settings: TelegramSettings, gateway: GatewayClient,
               stop: asyncio.Event) -> None:
    await started(application)
    await application.start()
    webhook = None
    if settings.telegram_webhook_url is None:
        await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
    else:
        webhook = await start_webhook(application, settings)
    found = services(application)
    deliverer = Deliverer(application.bot, gateway, settings.public_url)
    background = [
        watched(asyncio.create_task(deliverer.run_forever(), name="telegram delivery"), stop),
        watched(asyncio.create_task(found.pending.run_forever(), name="owed flattrs"), stop)]
    log.info("Telegram bot @%s running (%s)", application.bot.username,
             "webhook" if webhook else "long polling")
    try:
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if webhook is not None:
            await webhook.cleanup()
        elif application.updater.running:
            await application.updater.stop()
        await found.counts.close()
        await application.stop()


def watched(task: asyncio.Task, stop: asyncio.Event) -> asyncio.Task:
    """A background loop runs as long as the bot: one that ends anyway is logged and stops
    the bot, rather than leave it running without it."""

    def ended(done: asyncio.Task) -> None:
        if done.cancelled():  # the bot stopping
            return
        log.error("%s ended; stopping the bot", done.get_name(), exc_info=done.exception())
        stop.set()

    task.add_done_callback(ended)
    return task


async def start_webhook(application: Application, settings: TelegramSettings) -> web.AppRunner:
    """Telegram posts each update to the webhook URL: a reverse proxy hands it here."""
    if not settings.telegram_webhook_secret:  # anyone could post forged updates
        raise ValueError("a webhook needs FLATTR_TELEGRAM_WEBHOOK_SECRET")
    secret = settings.telegram_webhook_secret.get_secret_value()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403)
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise TypeError("an update is a JSON object")
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return web.Response(status=400)
        await application.update_queue.put(update)
        return web.Response()

    server = web.Application()
    server.router.add_post(urlsplit(settings.telegram_webhook_url).path or "/", receive)
    runner = web.AppRunner(server)
    await runner.setup()
    await web.TCPSite(runner, settings.telegram_webhook_listen,
                      settings.telegram_webhook_port).start()
    await application.bot.set_webhook(settings.telegram_webhook_url,
                                      allowed_updates=ALLOWED_UPDATES, secret_token=secret)
    return runner


def main() -> int:
    """The command's body: 2 with one line on standard error when it cannot start."""
    try:
        settings = TelegramSettings()
    except ValidationError as error:
        problem = error.errors()[0]
        print(f"flattr bot telegram: FLATTR_{str(problem['loc'][0]).upper()}: "
              f"{problem['msg']}", file=sys.stderr)
        return USAGE
    if settings.telegram_token is None:
        print("flattr bot telegram: set FLATTR_TELEGRAM_TOKEN to the token BotFather gave "
              "the bot", file=sys.stderr)
        return USAGE
    if settings.gateway_token is None:
        print("flattr bot telegram: set FLATTR_GATEWAY_TOKEN to a token with the bot scope "
              "(flattr token create HANDLE --scopes bot)", file=sys.stderr)
        return USAGE
    if settings.telegram_webhook_url is not None and not settings.telegram_webhook_secret:
        print("flattr bot telegram: set FLATTR_TELEGRAM_WEBHOOK_SECRET (1 to 256 letters, "
              "digits, _ and -) whenever FLATTR_TELEGRAM_WEBHOOK_URL is set", file=sys.stderr)
        return USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await serve(settings, stop)

    try:
        asyncio.run(run())
    except InvalidToken:
        print("flattr bot telegram: the Bot API refused FLATTR_TELEGRAM_TOKEN", file=sys.stderr)
        return 1
    except NetworkError as error:
        print(f"flattr bot telegram: no Bot API at {settings.api_root}: {error}",
              file=sys.stderr)
        return 1
    return 0
