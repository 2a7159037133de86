"""The commands: account (/start, /link, /unlink, /web), money (/balance, /budget, /stats,
/topup), web pages (/flattr, /unflattr) and chat admins' (/settings, /claim)."""

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatMemberStatus, ChatType, ReactionEmoji
from telegram.error import BadRequest, Forbidden
from telegram.ext import ContextTypes

from bots import topup as topping_up
from bots.client import GatewayError, Month
from bots.owed import now_or_owed, work_key
from bots.telegram.private import answer
from bots.telegram.reactions import author_for, author_of
from bots.telegram.services import Services, chat_key, identity, services, thing_of
from bots.telegram.texts import UNREACHABLE, explain, help_text

Context = ContextTypes.DEFAULT_TYPE
URL = re.compile(r"https?://\S+", re.IGNORECASE)
CODE = re.compile(r"^[A-Za-z0-9-]{4,20}$")
AMOUNT = re.compile(r"^[0-9]{1,9}([.][0-9]{1,6})?$")
ADMINS = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
EMOJI = frozenset(e.value for e in ReactionEmoji)


async def _refused(update: Update, found: Services, error: GatewayError,
                   not_found: str | None = None) -> None:
    """Tell the user why the gateway said no (`not_found`: what a 404 means here)."""
    text = not_found if not_found and error.code == "not_found" else None
    await answer(update, found, text or explain(error, found.start_link()))


async def _month(update: Update, found: Services) -> Month | None:
    try:
        return await found.gateway.month(identity(update.effective_user))
    except GatewayError as error:
        await _refused(update, found, error)
        return None


async def start(update: Update, context: Context) -> None:
    """/start (private): a new member for this user, or `/start CODE` from a deep link."""
    found = services(context)
    payload = context.args[0] if context.args else ""
    if payload and payload != "join":
        await _link(update, found, payload)
        return
    try:
        member, created = await found.gateway.create_member(identity(update.effective_user))
    except GatewayError as error:
        await _refused(update, found, error)
        return
    emoji = found.settings.telegram_emoji
    if created:
        text = (f"Welcome to Flattr! Your account is {member.handle}.\n"
                f"Set a monthly budget with /budget 5 and fund it on {found.settings.public_url}"
                f". Then react with {emoji} to posts you like in groups, or press Flattr "
                "under channel posts. /help tells the rest.")
    else:
        text = f"You are {member.handle} on Flattr. /help tells what I do."
    await answer(update, found, text)


async def link(update: Update, context: Context) -> None:
    """/link CODE: link this Telegram user to the member who made the code on the web."""
    found = services(context)
    if update.effective_chat.type != ChatType.PRIVATE:  # the code is no secret there
        await answer(update, found, "Send /link CODE to me here, never in a group: everyone "
                     "there saw that code, so I did not use it. Make a new one on the website."
                     if context.args else "Send /link CODE to me here, never in a group.")
        return
    if not context.args:
        await answer(update, found, "Send /link CODE with the code the website shows under "
                                    "Linked chats.")
        return
    await _link(update, found, context.args[0])


async def _link(update: Update, found: Services, code: str) -> None:
    if not CODE.match(code):
        await answer(update, found, "That is not a link code: they look like ABCD-EFGH.")
        return
    try:
        member = await found.gateway.link(code.upper(), identity(update.effective_user))
    except GatewayError as error:
        if error.code == "invalid_code":
            text = "That link code is unknown or used up: make a new one on the website."
        elif error.code == "identity_taken":
            text = "This Telegram account is linked already: /unlink it first."
        else:
            text = explain(error, found.start_link())
        await answer(update, found, text)
        return
    await answer(update, found, f"Linked: your flattrs here are now {member.handle}'s.")


async def unlink(update: Update, context: Context) -> None:
    found = services(context)
    try:
        await found.gateway.unlink(identity(update.effective_user))
    except GatewayError as error:
        await _refused(update, found, error, "This Telegram account is not linked.")
        return
    await answer(update, found, "Unlinked: your reactions here flattr nothing any more.")


async def web(update: Update, context: Context) -> None:
    """/web: a one-time link that signs the user in on the website, told only privately."""
    found = services(context)
    try:
        made = await found.gateway.sign_in_link(identity(update.effective_user))
    except GatewayError as error:
        await _refused(update, found, error)
        return
    await answer(update, found, f"Your sign-in link to the Flattr website (it works once, for "
                                f"{made.minutes_left()} minutes):\n{made.url}")


async def balance(update: Update, context: Context) -> None:
    found = services(context)
    month = await _month(update, found)
    if month is None:
        return
    budget = f"{month.budget} {month.currency}" if month.budget else "none set (/budget 5)"
    await answer(update, found, (
        f"{month.handle}\nTo give: {month.giving} {month.currency}\n"
        f"Received: {month.revenue} {month.currency}\n"
        f"Held for you: {month.held_for_you} {month.currency}\nMonthly budget: {budget}"))


async def budget(update: Update, context: Context) -> None:
    found = services(context)
    who = identity(update.effective_user)
    try:
        if context.args:
            amount = context.args[0].replace(",", ".")
            if not AMOUNT.match(amount):
                await answer(update, found, f"{amount[:20]} is not an amount: write it like 5 "
                                            "or 2.50.")
                return
            now = await found.gateway.set_budget(who, amount)
            month = await found.gateway.month(who)
            await answer(update, found, f"Your monthly budget is now {now} {month.currency}.")
            return
        month = await found.gateway.month(who)
    except GatewayError as error:
        await _refused(update, found, error)
        return
    shown = f"{month.budget} {month.currency}" if month.budget else "not set"
    await answer(update, found, f"Your monthly budget: {shown} (at least "
                                f"{month.minimum_budget} {month.currency}). Change it with "
                                "/budget AMOUNT.")


async def topup(update: Update, context: Context) -> None:
    """/topup AMOUNT (privately): the card fee and total, and Stripe's Checkout page as a
    button; /topup alone: how, within which limits, and any debt."""
    found = services(context)
    message = update.effective_message
    if message.chat.type != ChatType.PRIVATE:
        await answer(update, found, "Send /topup AMOUNT to me here, in our private chat.")
        return
    who = identity(update.effective_user)
    try:
        if not context.args:
            funding = await found.gateway.funding(who)
            await answer(update, found, topping_up.usage(funding, "/topup AMOUNT, like /topup 10"))
            return
        amount = topping_up.amount_of(context.args[0])
        if amount is None:
            await answer(update, found, f"{context.args[0][:20]} is not an amount: write it "
                                        "like 10 or 12.50.")
            return
        # One payment page per message, however often Telegram delivers it.
        made = await found.gateway.top_up(
            who, amount, idempotency_key=f"telegram-topup-{message.chat_id}-{message.message_id}")
    except GatewayError as error:
        await answer(update, found, topping_up.refused(error)
                     or explain(error, found.start_link()))
        return
    pay = InlineKeyboardMarkup([[InlineKeyboardButton(topping_up.pay_label(made),
                                                      url=made.checkout_url)]])
    await answer(update, found, topping_up.opened(made), markup=pay)


async def stats(update: Update, context: Context) -> None:
    found = services(context)
    month = await _month(update, found)
    if month is None:
        return
    worth = (f"about {month.estimated_share} {month.currency} each so far" if month.funded
             else "nothing yet: your budget or balance is below the minimum")
    await answer(update, found, (
        f"{month.period} so far:\nYou flattred {month.flattr_count} things, worth {worth}.\n"
        f"You received {month.received_flattrs} flattrs from {month.received_members} "
        "members."))


def _target(update: Update, context: Context) -> tuple[dict[str, str], Message | None]:
    """The URL given (or in the replied message), or the chat post replied to."""
    message = update.effective_message
    text = " ".join(context.args or ())
    if not text and message.text and not message.text.startswith("/"):
        found = URL.search(message.text)  # a plain message with a URL, replying to the bot
        text = found.group(0) if found else ""
    replied = message.reply_to_message
    if not text and replied is not None:
        text = replied.text or replied.caption or ""
        found = URL.search(text)
        if found is None and message.chat.type != ChatType.PRIVATE:
            return {"thing": thing_of(message.chat_id, replied.message_id)}, replied
        text = found.group(0) if found else ""
    return ({"url": text.strip()} if text.strip() else {}), None


async def flattr(update: Update, context: Context) -> None:
    """/flattr URL, or /flattr in reply to a post or to a message with a URL."""
    found = services(context)
    target, post = _target(update, context)
    if not target:
        await answer(update, found, "Send /flattr URL, or reply /flattr to a post.")
        return
    author = None
    if post is not None:
        # As for a reaction: a channel's post forwarded to its discussion group is the
        # channel's (its claimer's), not that of Telegram's account 777000 that forwarded it.
        written_by = author_of(post)
        if written_by is None:
            await answer(update, found, "I can't flattr that post: it has no person as author.")
            return
        author = await author_for(found, written_by)
    try:
        made = await found.gateway.flattr(identity(update.effective_user), author=author,
                                          **target)
    except GatewayError as error:
        await _refused(update, found, error)
        return
    what = target.get("url") or "that post"
    await answer(update, found, f"Flattred {what}." if made.created
                 else f"You flattred {what} already this month.")


async def unflattr(update: Update, context: Context) -> None:
    found = services(context)
    target, _ = _target(update, context)
    if not target:
        await answer(update, found, "Send /unflattr URL, or reply /unflattr to a post.")
        return
    who = identity(update.effective_user)
    key = work_key(who, target.get("thing") or target["url"])
    try:
        # The latest intent wins: a flattr owed for the post is forgotten once this answered.
        async with found.pending.locks.hold(key):
            done = await now_or_owed(found.pending, key,
                                     lambda: found.gateway.take_back(who, **target))
    except GatewayError as error:
        await _refused(update, found, error, "You have not flattred that this month.")
        return
    await answer(update, found, "Taken back." if done is not None else
                 f"{UNREACHABLE} I'll take that flattr back as soon as Flattr is back.")


async def help_command(update: Update, context: Context) -> None:
    found = services(context)
    chat = update.effective_chat
    emoji = found.settings.telegram_emoji
    if chat is not None and chat.type != ChatType.PRIVATE:
        emoji = await found.emoji(chat.id)
    await answer(update, found, help_text(emoji))


async def _is_admin(context: Context, chat_id: int | str, user_id: int) -> bool:
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
    except (BadRequest, Forbidden):
        return False
    return member.status in ADMINS


async def settings(update: Update, context: Context) -> None:
    """/settings EMOJI in a group, by one of its admins: the chat's flattr emoji."""
    found = services(context)
    chat, user = update.effective_chat, update.effective_user
    if chat.type == ChatType.PRIVATE:
        await answer(update, found, "Send /settings EMOJI in the group, as one of its admins.")
        return
    if not await _is_admin(context, chat.id, user.id):
        await answer(update, found, f"Only the admins of {chat.title or 'that chat'} change "
                                    "its settings.")
        return
    try:
        if not context.args:
            emoji = await found.emoji(chat.id)
            await answer(update, found, f"{chat.title}: the flattr emoji is {emoji}.")
            return
        chosen = context.args[0].strip()
        if chosen not in EMOJI:
            await answer(update, found, f"{chosen[:16]} is not one of Telegram's reaction "
                                        "emoji: try 👍, ❤, 🔥, 🏆 or 🙏.")
            return
        changed = await found.gateway.change_chat_settings(chat_key(chat), emoji=chosen)
    except GatewayError as error:
        await _refused(update, found, error)
        return
    found.remember_chat(changed)
    await update.effective_message.reply_text(f"Flattr emoji of this chat: {chosen}")


async def claim(update: Update, context: Context) -> None:
    """/claim @channel (privately): the channel's posts become the claimer's, who must be
    one of its admins."""
    found = services(context)
    user = update.effective_user
    if not context.args:
        await answer(update, found, "Send /claim @channel (or its id) here; you must be one of "
                                    "the channel's admins, and I too.")
        return
    name = context.args[0]
    try:
        chat = await context.bot.get_chat(name if name.startswith("@") else int(name))
    except (ValueError, BadRequest, Forbidden):
        await answer(update, found, f"I can't see {name[:40]}: add me to it as an admin first.")
        return
    if chat.type != ChatType.CHANNEL:
        await answer(update, found, "Only channels are claimed; in groups each post is its "
                                    "author's.")
        return
    if not await _is_admin(context, chat.id, user.id):
        await answer(update, found, f"You are not an admin of {chat.title}.")
        return
    who = identity(user)
    try:
        await found.gateway.month(who)  # a member of theirs, or the error that says how
        changed = await found.gateway.change_chat_settings(chat_key(chat), owner=who)
    except GatewayError as error:
        await _refused(update, found, error)
        return
    found.remember_chat(changed)
    await answer(update, found, f"{chat.title} is yours: flattrs of its posts go to you.")
