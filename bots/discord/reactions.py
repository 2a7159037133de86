"""Flattr by reaction: the server's emoji added to a post flattrs it for the reacting member,
taken away takes the flattr back (while the month is open).

Built on the raw events, which Discord sends for every message, cached or not: the post's
thing is `discord:<server>/<channel>/<message>` and its author the event's
`message_author_id` (additions only; a removal needs no author). Bots' reactions and bots'
posts are ignored. A reacting user without a Flattr account gets one DM a day saying how to
start; the unlinked author of a flattred post one a month saying what waits for them. While
the gateway cannot be reached, the flattr (with its first Idempotency-Key) or the take-back
is owed and sent once it is back.
"""

import logging
import uuid
from typing import TYPE_CHECKING

import discord

from bots.client import GatewayError
from bots.discord.private import DAY, link_button, tell
from bots.discord.texts import HOW_TO_START, UNREACHABLE
from bots.owed import now_or_owed, take_back_quietly

if TYPE_CHECKING:
    from bots.discord.bot import FlattrBot

log = logging.getLogger("flattr.bots.discord")
MONTH = 31 * DAY


def identity(user_id: int) -> str:
    return f"discord:{user_id}"


def thing_of(guild_id: int, channel_id: int, message_id: int) -> str:
    return f"discord:{guild_id}/{channel_id}/{message_id}"


def work_key(user_id: int, thing: str) -> str:
    """What a member's work on a thing is owed and locked under."""
    return f"{identity(user_id)} {thing}"


def _key(payload: discord.RawReactionActionEvent) -> str:
    return work_key(payload.user_id,
                    thing_of(payload.guild_id, payload.channel_id, payload.message_id))


def _ours(bot: "FlattrBot", payload: discord.RawReactionActionEvent) -> bool:
    """In a server, and not the bot's own reaction."""
    return payload.guild_id is not None and (bot.user is None or payload.user_id != bot.user.id)


async def added(bot: "FlattrBot", payload: discord.RawReactionActionEvent) -> None:
    if not _ours(bot, payload):
        return
    # The lock is taken before anything awaits: a removal right after waits for this, and so
    # does the flattr or take-back owed for the post, if any.
    async with bot.locks.hold(_key(payload)):
        await _added(bot, payload)


async def removed(bot: "FlattrBot", payload: discord.RawReactionActionEvent) -> None:
    if not _ours(bot, payload):
        return
    async with bot.locks.hold(_key(payload)):
        await _removed(bot, payload)


async def _admitted(bot: "FlattrBot", payload: discord.RawReactionActionEvent) -> bool:
    """The server's emoji in one of its flattring channels, within the user's limit."""
    if not await bot.servers.counts(payload.guild_id, payload.channel_id, payload.emoji):
        return False
    if bot.limits.allow(payload.user_id):
        return True
    log.info("reaction of %s dropped: over the per-user limit", payload.user_id)
    await tell(bot, bot.memory, payload.user_id, "You react faster than I can flattr: some of "
               "your reactions just now flattred nothing. Take them away and react again "
               "more slowly.", once=f"slow:{payload.user_id}", once_seconds=3600)
    return False


async def _added(bot: "FlattrBot", payload: discord.RawReactionActionEvent) -> None:
    if payload.member is not None and payload.member.bot:
        return
    if not await _admitted(bot, payload):
        return
    if payload.member is None and await bot.is_bot(payload.user_id):
        return
    author_id = payload.message_author_id or await _author_of(bot, payload)
    if author_id is None:
        return
    if author_id == payload.user_id:
        await tell(bot, bot.memory, payload.user_id, "That post is yours: you can't flattr "
                   "it.", once=f"own:{payload.user_id}", once_seconds=DAY)
        return
    if await bot.is_bot(author_id):
        return
    who, author = identity(payload.user_id), identity(author_id)
    thing = thing_of(payload.guild_id, payload.channel_id, payload.message_id)
    key = f"discord-reaction-{uuid.uuid4().hex}"

    async def send() -> bool:
        made = await bot.gateway.flattr(who, thing=thing, author=author, idempotency_key=key)
        if made.owner is None:
            await invite(bot, author_id)
        return True

    try:
        sent = await now_or_owed(bot.pending, _key(payload), send)
    except GatewayError as error:
        await _refused(bot, payload.user_id, error)
        return
    if sent is None:
        await tell(bot, bot.memory, payload.user_id, f"{UNREACHABLE} I'll flattr that post as "
                   "soon as it is back.", once=f"down:{payload.user_id}", once_seconds=600)


async def _author_of(bot: "FlattrBot", payload: discord.RawReactionActionEvent) -> int | None:
    """The post's author when the event did not name it: the message, asked of Discord."""
    try:
        data = await bot.http.get_message(payload.channel_id, payload.message_id)
    except discord.HTTPException as error:
        log.info("message %s not readable: %s", payload.message_id, error)
        return None
    author = data.get("author") or {}
    if data.get("webhook_id") or author.get("bot") or "id" not in author:
        return None
    return int(author["id"])


async def _refused(bot: "FlattrBot", user_id: int, error: GatewayError) -> None:
    if error.code == "identity_not_linked":
        await tell(bot, bot.memory, user_id, "Your reaction could flattr that post: "
                   f"{HOW_TO_START}. Flattr shares your monthly budget among everything you "
                   "liked this month.", once=f"nudged:{user_id}", once_seconds=DAY,
                   view=link_button("Flattr", bot.settings.public_url))
    elif error.code == "own_thing":
        await tell(bot, bot.memory, user_id, "That post is yours: you can't flattr it.",
                   once=f"own:{user_id}", once_seconds=DAY)
    else:
        log.info("flattr by %s refused: %s", user_id, error)


async def _removed(bot: "FlattrBot", payload: discord.RawReactionActionEvent) -> None:
    # Never limited: dropped, the removal of an admitted addition would leave its flattr.
    # A user removes only reactions they added, so removals are no more than additions.
    if not await bot.servers.counts(payload.guild_id, payload.channel_id, payload.emoji):
        return
    who = identity(payload.user_id)
    thing = thing_of(payload.guild_id, payload.channel_id, payload.message_id)

    try:
        await now_or_owed(bot.pending, _key(payload),
                          lambda: take_back_quietly(bot.gateway, who, thing))
    except GatewayError as error:
        if error.code == "period_closed":
            await tell(bot, bot.memory, payload.user_id, "This month is being settled: your "
                       "flattr of that post stays.", once=f"closed-month:{payload.user_id}",
                       once_seconds=DAY)
        else:
            log.info("take-back by %s refused: %s", payload.user_id, error)


async def invite(bot: "FlattrBot", author_id: int) -> None:
    """One DM a month to an unlinked author whose posts were flattred. The gateway's refusal
    or absence is logged, not raised: the flattr before it is made, and stays made."""
    author = identity(author_id)
    try:
        waiting = await bot.gateway.waiting(author)
    except GatewayError as error:
        log.info("no invitation to %s: %s", author_id, error)
        return
    if waiting.linked or waiting.flattrs == 0:
        return
    await tell(bot, bot.memory, author_id, (
        f"{waiting.flattrs} flattrs of {waiting.things} of your posts wait for you this month "
        f"({waiting.period}). To have them, {HOW_TO_START}."),
        once=f"invited:{author_id}:{waiting.period}", once_seconds=MONTH,
        view=link_button("Flattr", bot.settings.public_url))
