"""Talking to one user in their private chat with the bot, never in a group.

Telegram lets a bot write first only to users who started it, so the bot remembers who
talked to it and writes to no one else. A user who blocked the bot is forgotten."""

import logging

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, TelegramError

from bots.telegram.services import TALKED_TTL_SECONDS, Services

log = logging.getLogger("flattr.bots.telegram")
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def talked_key(user_id: int) -> str:
    return f"talked:{user_id}"


async def note_talk(services: Services, update: Update) -> None:
    """A private message from a user: the bot may write to them from now on."""
    chat, user = update.effective_chat, update.effective_user
    if chat is not None and user is not None and chat.type == ChatType.PRIVATE:
        await services.memory.put(talked_key(user.id), "1", TALKED_TTL_SECONDS)


async def tell(bot: Bot, services: Services, user_id: int, text: str, *,
               once: str | None = None, once_seconds: int = 24 * 3600,
               markup: InlineKeyboardMarkup | None = None) -> bool:
    """Send `text` privately if the user talked to the bot (and, with `once`, only the first
    time in `once_seconds`: marked only once Telegram took it). True when it was sent."""
    if await services.memory.get(talked_key(user_id)) is None:
        return False
    if once is not None and await services.memory.get(once) is not None:
        return False
    try:
        await bot.send_message(user_id, text, reply_markup=markup,
                               link_preview_options=NO_PREVIEW)
    except (Forbidden, BadRequest) as error:  # blocked, or the chat is gone
        log.info("cannot write to %s: %s", user_id, error)
        await services.memory.put(talked_key(user_id), "", 1)
        return False
    except TelegramError as error:
        log.warning("writing to %s failed: %s", user_id, error)
        return False
    if once is not None:
        await services.memory.put(once, "1", once_seconds)
    return True


async def answer(update: Update, services: Services, text: str, *,
                 markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer a command: in its chat when private, else privately to whoever sent it."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    if message.chat.type == ChatType.PRIVATE:
        await message.reply_text(text, reply_markup=markup, link_preview_options=NO_PREVIEW)
        return
    await tell(message.get_bot(), services, user.id, text, markup=markup)
