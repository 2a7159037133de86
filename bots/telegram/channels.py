"""Channels: a Flattr button under each new post, pressed to flattr the post for whoever
pressed it; the post is the channel claimer's (`/claim`), held while nobody claimed it."""

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bots.client import GatewayError
from bots.owed import now_or_owed, work_key
from bots.telegram.counts import button
from bots.telegram.services import identity, services, thing_of
from bots.telegram.texts import UNREACHABLE, explain

log = logging.getLogger("flattr.bots.telegram")
Context = ContextTypes.DEFAULT_TYPE


async def posted(update: Update, context: Context) -> None:
    """A new channel post gets the button, unless it came with buttons of its own."""
    post = update.channel_post
    if post is None or post.reply_markup is not None:
        return
    try:
        await context.bot.edit_message_reply_markup(post.chat_id, post.message_id,
                                                    reply_markup=button())
    except TelegramError as error:  # not an admin who may edit, or the post is gone
        log.info("no button under %s/%s: %s", post.chat_id, post.message_id, error)


async def pressed(update: Update, context: Context) -> None:
    found = services(context)
    query = update.callback_query
    message = query.message
    if message is None:  # an inline message: not a chat post of ours
        await query.answer()
        return
    chat_id, message_id = message.chat.id, message.message_id
    thing, who = thing_of(chat_id, message_id), identity(query.from_user)
    key = f"telegram-button-{query.id}"

    async def send():
        owner = (await found.chat(chat_id)).owner
        return await found.gateway.flattr(who, thing=thing, author=owner, idempotency_key=key)

    try:
        async with found.pending.locks.hold(work_key(who, thing)):
            made = await now_or_owed(found.pending, work_key(who, thing), send)
    except GatewayError as error:
        if error.code == "identity_not_linked":
            # A t.me link to the bot: the client opens the private chat with /start.
            await query.answer("Link your Flattr account first", url=found.start_link())
        elif error.code == "own_thing":
            await query.answer("This post is yours: you can't flattr it.")
        else:
            await query.answer(explain(error, found.start_link())[:200], show_alert=True)
        return
    if made is None:
        await query.answer(f"{UNREACHABLE} I'll flattr this post as soon as it is back.",
                           show_alert=True)
        return
    await query.answer("Flattred ✓" if made.created else "Already flattred this month")
    if made.created:
        found.counts.schedule(context.bot, chat_id, message_id)
