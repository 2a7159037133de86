"""Flattr by reaction in groups: the chat's emoji added flattrs the post, taken away takes
the flattr back. Telegram's reaction update names no author, so the bot remembers the
author of each message it sees; a post it never saw is not guessed at."""

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bots.client import GatewayError
from bots.owed import now_or_owed, take_back_quietly, work_key
from bots.telegram.private import note_talk, tell
from bots.telegram.services import AUTHOR_TTL_SECONDS, Services, identity, services, thing_of
from bots.telegram.texts import UNREACHABLE

log = logging.getLogger("flattr.bots.telegram")
Context = ContextTypes.DEFAULT_TYPE
DAY = 24 * 3600
MONTH = 31 * DAY


def author_key(chat_id: int, message_id: int) -> str:
    return f"author:{chat_id}/{message_id}"


def author_of(message: Message) -> str | None:
    """Who a message is by: a person (`telegram:<id>`), a chat posting as itself
    (`chat:<id>`: its claimer's), or None for bots."""
    if message.sender_chat is not None:
        return f"chat:{message.sender_chat.id}"
    if message.from_user is None or message.from_user.is_bot:
        return None
    return identity(message.from_user)


async def seen(update: Update, context: Context) -> None:
    """Every message: remember who talks to the bot and who wrote what in groups."""
    found = services(context)
    await note_talk(found, update)
    message = update.effective_message
    if message is None or message.chat.type == ChatType.PRIVATE:
        return
    author = author_of(message)
    if author is not None:
        await found.memory.put(author_key(message.chat_id, message.message_id), author,
                               AUTHOR_TTL_SECONDS)


async def author_for(found: Services, remembered: str) -> str | None:
    """The chat identity a remembered author stands for: a chat posting as itself (a
    channel's post forwarded to its discussion group) is its claimer's, None unclaimed."""
    if remembered.startswith("chat:"):
        return (await found.chat(int(remembered.removeprefix("chat:")))).owner
    return remembered


async def reacted(update: Update, context: Context) -> None:
    found = services(context)
    change = update.message_reaction
    user = change.user
    if user is None or user.is_bot:  # anonymous admins react as the chat
        return
    # In order with the post and the user's other updates: ordering.InOrderProcessor.
    emoji = await found.emoji(change.chat.id)
    before = any(getattr(r, "emoji", None) == emoji for r in change.old_reaction)
    after = any(getattr(r, "emoji", None) == emoji for r in change.new_reaction)
    if before == after:
        return
    thing = thing_of(change.chat.id, change.message_id)
    # The latest intent wins: the flattr or take-back owed for the post waits for this.
    async with found.pending.locks.hold(work_key(identity(user.id), thing)):
        if after:
            await _flattr(context, found, update.update_id, user.id, thing, change.chat.title)
        else:
            await _take_back(context, found, user.id, thing)


async def _flattr(context: Context, found: Services, update_id: int, user_id: int, thing: str,
                  title: str | None) -> None:
    chat_id, message_id = (int(p) for p in thing.removeprefix("telegram:").split("/"))
    remembered = await found.memory.get(author_key(chat_id, message_id))
    if remembered is None:
        await tell(context.bot, found, user_id, f"I can't flattr that post in {title}: I did "
                   "not see it being posted, so I don't know whose it is.",
                   once=f"unseen:{user_id}:{thing}", once_seconds=MONTH)
        return
    author = await author_for(found, remembered)
    who = identity(user_id)
    key = f"telegram-reaction-{update_id}-{user_id}"

    async def send() -> bool:
        made = await found.gateway.flattr(who, thing=thing, author=author, idempotency_key=key)
        if made.owner is None and author is not None:
            await invite(context, found, author)
        return True

    try:
        sent = await now_or_owed(found.pending, work_key(who, thing), send)
    except GatewayError as error:
        await _refused(context, found, user_id, thing, title, error)
        return
    if sent is None:
        await tell(context.bot, found, user_id, f"{UNREACHABLE} I'll flattr that post in "
                   f"{title} as soon as it is back.", once=f"down:{user_id}", once_seconds=600)


async def _refused(context: Context, found: Services, user_id: int, thing: str,
                   title: str | None, error: GatewayError) -> None:
    if error.code == "identity_not_linked":
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Start Flattr",
                                                             url=found.start_link())]])
        await tell(context.bot, found, user_id, f"Your reaction in {title} could flattr that "
                   "post: make your Flattr account with /start, or link yours with /link "
                   "CODE.", once=f"nudged:{user_id}", once_seconds=MONTH, markup=markup)
    elif error.code == "own_thing":
        await tell(context.bot, found, user_id, "That post is yours: you can't flattr it.",
                   once=f"own:{user_id}:{thing}", once_seconds=MONTH)
    else:
        log.info("flattr of %s by %s refused: %s", thing, user_id, error)


async def _take_back(context: Context, found: Services, user_id: int, thing: str) -> None:
    who = identity(user_id)
    try:
        await now_or_owed(found.pending, work_key(who, thing),
                          lambda: take_back_quietly(found.gateway, who, thing))
    except GatewayError as error:
        log.info("take-back of %s by %s refused: %s", thing, user_id, error)


async def invite(context: Context, found: Services, author: str) -> None:
    """One private message a month to an unlinked author whose posts were flattred, if they
    ever talked to the bot (Telegram lets no bot write first)."""
    if not author.startswith("telegram:"):
        return
    user_id = int(author.removeprefix("telegram:"))
    waiting = await found.gateway.waiting(author)
    if waiting.linked or waiting.flattrs == 0:
        return
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Claim them", url=found.start_link())]])
    await tell(context.bot, found, user_id, (
        f"{waiting.flattrs} flattrs of {waiting.things} of your posts wait for you this month "
        f"({waiting.period}). Send /start to make your Flattr account, or /link CODE to link "
        "yours, and they are yours."), once=f"invited:{author}:{waiting.period}",
        once_seconds=MONTH, markup=markup)
