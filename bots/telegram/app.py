"""The PTB Application of the bot: built against a Bot API server, with every handler."""

import logging
import os

from telegram import BotCommand
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    MessageReactionHandler,
    filters,
)

from bots import pending as pending_work
from bots.client import GatewayClient
from bots.memory import Memory
from bots.telegram import channels, commands, reactions
from bots.telegram.counts import FLATTR_DATA, CountEditor
from bots.telegram.ordering import InOrderProcessor
from bots.telegram.services import SERVICES, Services, services
from bots.telegram.settings import TelegramSettings
from bots.telegram.texts import COMMANDS

log = logging.getLogger("flattr.bots.telegram")
# Telegram leaves message_reaction out unless it is named.
ALLOWED_UPDATES = ["message", "channel_post", "callback_query", "message_reaction"]
PRIVATE = filters.ChatType.PRIVATE
COMMAND_HANDLERS = {
    "start": (commands.start, PRIVATE),
    "link": (commands.link, None),
    "unlink": (commands.unlink, None),
    "web": (commands.web, None),
    "balance": (commands.balance, None),
    "budget": (commands.budget, None),
    "topup": (commands.topup, None),
    "stats": (commands.stats, None),
    "flattr": (commands.flattr, None),
    "unflattr": (commands.unflattr, None),
    "help": (commands.help_command, None),
    "settings": (commands.settings, None),
    "claim": (commands.claim, PRIVATE),
}


def build_application(settings: TelegramSettings, *, gateway: GatewayClient, memory: Memory,
                      polling: bool = True, rate_limiter: bool = True,
                      pending: pending_work.Pending | None = None) -> Application:
    """The Application with its handlers and services; `initialize()` it, then `started()`."""
    if settings.telegram_token is None:
        raise ValueError("FLATTR_TELEGRAM_TOKEN is not set")
    # RetryAfter.retry_after as a timedelta, without PTB's deprecation warning.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    root = settings.api_root
    builder = (ApplicationBuilder().token(settings.telegram_token.get_secret_value())
               .base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
               .concurrent_updates(InOrderProcessor(settings.telegram_concurrent_updates)))
    if rate_limiter:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=1))
    if not polling:
        builder = builder.updater(None)
    application = builder.build()
    application.bot_data[SERVICES] = Services(
        gateway=gateway, memory=memory, settings=settings, pending=pending or
        pending_work.Pending(), counts=CountEditor(gateway, settings.telegram_count_edit_seconds))
    add_handlers(application)
    return application


def add_handlers(application: Application) -> None:
    # Group -1 sees every message first: who talks to the bot, who wrote what.
    application.add_handler(MessageHandler(filters.ALL, reactions.seen), group=-1)
    for name, (callback, only) in COMMAND_HANDLERS.items():
        application.add_handler(CommandHandler(name, callback, filters=only))
    application.add_handler(MessageHandler(
        PRIVATE & filters.REPLY & filters.Regex(commands.URL) & ~filters.COMMAND,
        commands.flattr))
    application.add_handler(MessageReactionHandler(
        reactions.reacted, message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_UPDATED))
    application.add_handler(MessageHandler(filters.UpdateType.CHANNEL_POST, channels.posted))
    application.add_handler(CallbackQueryHandler(channels.pressed, pattern=f"^{FLATTR_DATA}$"))
    application.add_error_handler(log_error)


async def started(application: Application) -> None:
    """After `initialize()` (getMe): the bot's name for deep links, its command list."""
    services(application).bot_username = application.bot.username
    await application.bot.set_my_commands([BotCommand(n, about) for n, about in COMMANDS])


async def log_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("update %s failed", getattr(update, "update_id", None), exc_info=context.error)
