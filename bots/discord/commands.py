"""The application commands, every answer ephemeral (only the user sees it): account
(/signup, /link, /unlink, /web), money (/balance, /budget, /stats, /summary, /topup), web pages
(/flattr, /unflattr), a message's context menu "Flattr this post", and the server's
/flattr-settings.

Discord waits 3 s for an answer: one the gateway has not given within
`answer_within_seconds` is deferred ("thinking…") and sent as a follow-up. A flattr or a
take-back the gateway could not take is owed and sent once it is back, with its first
Idempotency-Key; everything else says to try again.
"""

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bots import topup as topping_up
from bots.client import GatewayError, Month
from bots.discord.private import link_button
from bots.discord.reactions import identity, invite, thing_of, work_key
from bots.discord.servers import (
    is_the_servers_emoji,
    known,
    not_the_servers_channels,
    parse_emoji,
    server_key,
    shown,
)
from bots.discord.texts import UNREACHABLE, clipped, explain
from bots.owed import now_or_owed

if TYPE_CHECKING:
    from bots.discord.bot import FlattrBot

log = logging.getLogger("flattr.bots.discord")
URL = re.compile(r"^https?://[^\s]{1,2000}$", re.IGNORECASE)
CODE = re.compile(r"^[A-Za-z0-9-]{4,20}$")
AMOUNT = re.compile(r"^[0-9]{1,9}([.][0-9]{1,6})?$")
CHANNEL = re.compile(r"<#([0-9]{15,21})>|\b([0-9]{15,21})\b")
MAX_CHANNELS = 100
SUMMARY = "summary"


@dataclass(frozen=True)
class Reply:
    text: str
    view: discord.ui.View | None = None


def _bot(interaction: discord.Interaction) -> "FlattrBot":
    return interaction.client  # type: ignore[return-value]


def _who(interaction: discord.Interaction) -> str:
    return identity(interaction.user.id)


async def reply(interaction: discord.Interaction, work: Awaitable[Reply | str]) -> None:
    """Answer with what `work` comes to, ephemerally; deferred first when it is slow."""
    task = asyncio.ensure_future(_answer_of(work))
    try:
        answer = await asyncio.wait_for(asyncio.shield(task),
                                        _bot(interaction).answer_within_seconds)
    except TimeoutError:
        await interaction.response.defer(ephemeral=True, thinking=True)
        answer = await task
    extra = {"view": answer.view} if answer.view is not None else {}
    if interaction.response.is_done():
        await interaction.followup.send(clipped(answer.text), ephemeral=True, **extra)
    else:
        await interaction.response.send_message(clipped(answer.text), ephemeral=True, **extra)


async def _answer_of(work: Awaitable[Reply | str]) -> Reply:
    try:
        found = await work
    except GatewayError as error:
        return Reply(explain(error))
    except Exception:
        log.exception("a command failed")
        return Reply("Something went wrong on Flattr's side. Try again later.")
    return found if isinstance(found, Reply) else Reply(found)


async def failed(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """The tree's errors (a check that failed, an option Discord sent wrong): logged, told."""
    log.warning("command %s failed: %s", getattr(interaction.command, "name", "?"), error)
    if not interaction.response.is_done():
        await interaction.response.send_message("That did not work: try again.",
                                                ephemeral=True)


async def _emoji(interaction: discord.Interaction) -> str:
    bot = _bot(interaction)
    if interaction.guild_id is None:
        return shown(bot.settings.discord_emoji)
    return shown(bot.servers.emoji_of(await bot.servers.settings(interaction.guild_id)))


# --- account -------------------------------------------------------------------------------

@app_commands.command(name="signup", description="Make a Flattr account for this Discord "
                                                 "account")
async def signup(interaction: discord.Interaction) -> None:
    await reply(interaction, _signup(interaction))


async def _signup(interaction: discord.Interaction) -> str:
    bot = _bot(interaction)
    member, created = await bot.gateway.create_member(_who(interaction))
    if not created:
        return f"You are {member.handle} on Flattr already. /balance tells where you stand."
    return (f"Welcome to Flattr! Your account is {member.handle}. Set a monthly budget with "
            f"/budget 5 and fund it on {bot.settings.public_url}. Then react with "
            f"{await _emoji(interaction)} to posts you like: your budget is shared among them "
            "at the end of the month.")


@app_commands.command(name="link", description="Link this Discord account to your Flattr "
                                               "account")
@app_commands.describe(code="The code the website shows under Linked chats")
async def link(interaction: discord.Interaction, code: str) -> None:
    await reply(interaction, _link(interaction, code.strip()))


async def _link(interaction: discord.Interaction, code: str) -> str:
    if not CODE.match(code):
        return "That is not a link code: they look like ABCD-EFGH."
    try:
        member = await _bot(interaction).gateway.link(code.upper(), _who(interaction))
    except GatewayError as error:
        if error.code == "invalid_code":
            return "That link code is unknown or used up: make a new one on the website."
        if error.code == "identity_taken":
            return "This Discord account is linked already: /unlink it first."
        raise
    return f"Linked: your flattrs on Discord are now {member.handle}'s."


@app_commands.command(name="unlink", description="Unlink this Discord account from Flattr")
async def unlink(interaction: discord.Interaction) -> None:
    await reply(interaction, _unlink(interaction))


async def _unlink(interaction: discord.Interaction) -> str:
    try:
        await _bot(interaction).gateway.unlink(_who(interaction))
    except GatewayError as error:
        if error.code in ("not_found", "identity_not_linked"):
            return "This Discord account is not linked to Flattr."
        raise
    return "Unlinked: your reactions flattr nothing any more."


@app_commands.command(name="web", description="A one-time link that signs you in on the "
                                              "website")
async def web(interaction: discord.Interaction) -> None:
    await reply(interaction, _web(interaction))


async def _web(interaction: discord.Interaction) -> Reply:
    made = await _bot(interaction).gateway.sign_in_link(_who(interaction))
    return Reply(f"Your sign-in link to the Flattr website: it works once, for "
                 f"{made.minutes_left()} minutes.", link_button("Sign in on the web", made.url))


# --- money -----------------------------------------------------------------------------------

def _amount(value: str | None, month: Month) -> str:
    return f"{value} {month.currency}" if value else "none"


@app_commands.command(name="balance", description="Your balances and budget")
async def balance(interaction: discord.Interaction) -> None:
    await reply(interaction, _balance(interaction))


async def _balance(interaction: discord.Interaction) -> str:
    month = await _bot(interaction).gateway.month(_who(interaction))
    budget = _amount(month.budget, month) if month.budget else "none set (/budget 5)"
    return (f"**{month.handle}**\nTo give: {month.giving} {month.currency}\n"
            f"Received: {month.revenue} {month.currency}\n"
            f"Held for you: {month.held_for_you} {month.currency}\nMonthly budget: {budget}")


@app_commands.command(name="budget", description="Show or set your monthly budget")
@app_commands.describe(amount="The new monthly budget, like 5 or 2.50")
async def budget(interaction: discord.Interaction, amount: str | None = None) -> None:
    await reply(interaction, _budget(interaction, amount))


async def _budget(interaction: discord.Interaction, amount: str | None) -> str:
    gateway, who = _bot(interaction).gateway, _who(interaction)
    if amount is None:
        month = await gateway.month(who)
        shown_budget = _amount(month.budget, month) if month.budget else "not set"
        return (f"Your monthly budget: {shown_budget} (at least {month.minimum_budget} "
                f"{month.currency}). Change it with /budget amount.")
    amount = amount.strip().replace(",", ".")
    if not AMOUNT.match(amount):
        return f"`{amount[:20]}` is not an amount: write it like 5 or 2.50."
    now = await gateway.set_budget(who, amount)
    month = await gateway.month(who)
    return f"Your monthly budget is now {now} {month.currency}."


@app_commands.command(name="topup", description="Add funds by card (the card fee is shown "
                                                "first)")
@app_commands.describe(amount="How much to add, like 10 or 12.50")
async def topup(interaction: discord.Interaction, amount: str | None = None) -> None:
    await reply(interaction, _topup(interaction, amount))


async def _topup(interaction: discord.Interaction, amount: str | None) -> Reply | str:
    """The card fee and total, and Stripe's Checkout page as a link button; without an
    amount: how, within which limits, and any debt."""
    gateway, who = _bot(interaction).gateway, _who(interaction)
    try:
        if amount is None:
            return topping_up.usage(await gateway.funding(who), "/topup and an amount, like 10")
        chosen = topping_up.amount_of(amount)
        if chosen is None:
            return f"`{amount.strip()[:20]}` is not an amount: write it like 10 or 12.50."
        # One payment page per interaction, however often it is answered.
        made = await gateway.top_up(who, chosen,
                                    idempotency_key=f"discord-topup-{interaction.id}")
    except GatewayError as error:
        said = topping_up.refused(error)
        if said is None:
            raise
        return said
    return Reply(topping_up.opened(made), link_button(topping_up.pay_label(made),
                                                      made.checkout_url))


@app_commands.command(name="stats", description="This month so far: your flattrs and what you "
                                                "received")
async def stats(interaction: discord.Interaction) -> None:
    await reply(interaction, _stats(interaction))


async def _stats(interaction: discord.Interaction) -> str:
    month = await _bot(interaction).gateway.month(_who(interaction))
    worth = (f"about {month.estimated_share} {month.currency} each so far" if month.funded
             else "nothing yet: your budget or balance is below the minimum")
    return (f"**{month.period}** so far:\nYou flattred {month.flattr_count} things, worth "
            f"{worth}.\nYou received {month.received_flattrs} flattrs from "
            f"{month.received_members} members.")


@app_commands.command(name="summary", description="Your last monthly summary")
async def summary(interaction: discord.Interaction) -> None:
    await reply(interaction, _summary(interaction))


async def _summary(interaction: discord.Interaction) -> Reply:
    bot = _bot(interaction)
    inbox = await bot.gateway.messages(_who(interaction), limit=100)
    last = next((m for m in inbox if m.kind == SUMMARY), None)
    if last is None:
        return Reply("No monthly summary yet: the first comes when your first month with "
                     "Flattr has been settled.")
    view = link_button("Your statement", bot.statement_link(last.period)) if last.period else None
    return Reply(f"**{last.subject}**\n{last.text}", view)


# --- flattrs ---------------------------------------------------------------------------------

async def _owed(bot: "FlattrBot", key: str, work: Callable[[], Awaitable[str]], what: str,
                later: str) -> str:
    """What `work` said of `what`; when the gateway is away, the work owed and `later` told."""
    async with bot.locks.hold(key):
        said = await now_or_owed(bot.pending, key, work)
    return f"{UNREACHABLE} {later}" if said is None else f"{said} {what}"


@app_commands.command(name="flattr", description="Flattr a web page")
@app_commands.describe(url="The page's address, https://…")
async def flattr(interaction: discord.Interaction, url: str) -> None:
    await reply(interaction, _page(interaction, url.strip(), take_back=False))


@app_commands.command(name="unflattr", description="Take back this month's flattr of a web page")
@app_commands.describe(url="The page's address, https://…")
async def unflattr(interaction: discord.Interaction, url: str) -> None:
    await reply(interaction, _page(interaction, url.strip(), take_back=True))


async def _page(interaction: discord.Interaction, url: str, *, take_back: bool) -> str:
    """/flattr or /unflattr of a web page."""
    if not URL.match(url):
        return "Give the address of a web page, starting with https:// or http://."
    bot, who = _bot(interaction), _who(interaction)
    key = f"discord-command-{uuid.uuid4().hex}"

    async def flattr_it() -> str:
        made = await bot.gateway.flattr(who, url=url, idempotency_key=key)
        return "Flattred" if made.created else "You flattred that already this month:"

    async def take_it_back() -> str:
        try:
            await bot.gateway.take_back(who, url=url)
        except GatewayError as error:
            if error.code == "not_found":
                return "You have not flattred that this month:"
            raise
        return "Taken back:"

    if take_back:
        return await _owed(bot, f"{who} {url}", take_it_back, url,
                           f"I'll take back your flattr of {url} as soon as it is back.")
    return await _owed(bot, f"{who} {url}", flattr_it, url,
                       f"I'll flattr {url} as soon as it is back.")


@app_commands.context_menu(name="Flattr this post")
@app_commands.guild_only()
async def flattr_this_post(interaction: discord.Interaction, message: discord.Message) -> None:
    await reply(interaction, _flattr_post(interaction, message))


async def _flattr_post(interaction: discord.Interaction, message: discord.Message) -> str:
    bot, who = _bot(interaction), _who(interaction)
    if message.author.bot or message.webhook_id is not None:
        return "I flattr people's posts, not bots'."
    if message.author.id == interaction.user.id:
        return "That post is yours: you can't flattr it."
    settings = await bot.servers.settings(interaction.guild_id)
    if settings.channels and str(message.channel.id) not in settings.channels:
        return "Flattr is off in this channel: the server's managers chose other channels."
    thing = thing_of(interaction.guild_id, message.channel.id, message.id)
    key = f"discord-command-{uuid.uuid4().hex}"

    async def send() -> str:
        made = await bot.gateway.flattr(who, thing=thing, author=identity(message.author.id),
                                        idempotency_key=key)
        if made.owner is None:
            await invite(bot, message.author.id)
        return "Flattred" if made.created else "You flattred that already this month:"

    return await _owed(bot, work_key(interaction.user.id, thing), send, message.jump_url,
                       "I'll flattr that post as soon as it is back.")


# --- the server's settings ---------------------------------------------------------------------

@app_commands.command(name="flattr-settings",
                      description="This server's flattr emoji and channels")
@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
@app_commands.describe(emoji="The flattr emoji: a standard one, one of this server's, or "
                             "'default'",
                       channels="Where reactions flattr: #channel mentions, or 'all'")
async def flattr_settings(interaction: discord.Interaction, emoji: str | None = None,
                          channels: str | None = None) -> None:
    await reply(interaction, _settings(interaction, emoji, channels))


async def _settings(interaction: discord.Interaction, emoji: str | None,
                    channels: str | None) -> str:
    bot = _bot(interaction)
    if interaction.guild_id is None:
        return "Use /flattr-settings in the server whose settings you want to see or change."
    # The server as discord.py knows it: what it names must be the server's own.
    guild = bot.get_guild(interaction.guild_id)
    guild = guild if known(guild) else None
    changes: dict[str, object] = {}
    if emoji is not None:
        chosen = None if emoji.strip().lower() == "default" else parse_emoji(emoji)
        if chosen is None and emoji.strip().lower() != "default":
            return (f"`{emoji[:40]}` is not an emoji: pick a standard one like 💸 or 🔥, one "
                    "of this server's, or 'default'.")
        if guild is not None and not is_the_servers_emoji(guild, chosen):
            return (f"{shown(chosen or '')} is not one of this server's emoji: pick one of "
                    "them, a standard one like 💸, or 'default'.")
        changes["emoji"] = chosen
    if channels is not None:
        if channels.strip().lower() == "all":
            changes["channels"] = []
        else:
            found = list(dict.fromkeys(a or b for a, b in CHANNEL.findall(channels)))
            if not found or len(found) > MAX_CHANNELS:
                return (f"Name 1 to {MAX_CHANNELS} channels as #mentions, or 'all' for every "
                        "channel.")
            foreign = not_the_servers_channels(guild, found) if guild is not None else []
            if foreign:
                return (f"<#{foreign[0]}> is not a channel of this server: name its channels "
                        "as #mentions, or 'all'.")
            changes["channels"] = found
    key = server_key(interaction.guild_id)
    if changes:
        if not interaction.permissions.manage_guild:
            return "Only members who may Manage Server change Flattr's settings here."
        settings = await bot.gateway.change_chat_settings(key, **changes)
        bot.servers.remember(settings)
    else:
        settings = await bot.servers.settings(interaction.guild_id)
    where = (", ".join(f"<#{c}>" for c in settings.channels) if settings.channels
             else "every channel")
    return (f"Flattr in this server: react with {shown(bot.servers.emoji_of(settings))} in "
            f"{where}.")


COMMANDS = (signup, link, unlink, web, balance, budget, topup, stats, summary, flattr,
            unflattr, flattr_settings, flattr_this_post)


def add_to(tree: app_commands.CommandTree) -> None:
    for command in COMMANDS:
        tree.add_command(command)
