"""Every slash command and the "Flattr this post" menu, with good and bad input, through the
real discord.py client: INTERACTION_CREATE dispatches, answered through the interaction
callback route, ephemerally; a real gateway on each backend."""

import aiohttp
import pytest
from discord_harness import CHANNEL, GUILD, OTHER_CHANNEL
from outbox_messages import message, queue
from sqlalchemy import func, select
from web_sign_in_link import use_sign_in_link

from chat_flattrs import flattred
from core import members
from core.schema import identities
from discord_standin import MANAGE_GUILD, user

FAN, AUTHOR, NEWCOMER = 100000000000000222, 100000000000000111, 100000000000000333
POST = 900000000000000001
CUSTOM_EMOJI = 700000000000000077
NOT_LINKED = ("This Discord account has no Flattr account yet: use /signup to make a Flattr "
              "account for this Discord account, or /link CODE with a code from the website "
              "(Linked chats) to link yours.")


@pytest.fixture
async def fan(web_member):
    return await web_member("fan", identity=f"discord:{FAN}")


async def web_call(gateway_server, token: str, method: str, path: str, **kwargs) -> dict:
    async with aiohttp.ClientSession() as session, session.request(
            method, str(gateway_server.make_url("/api/v1" + path)),
            headers={"Authorization": f"Bearer {token}"}, **kwargs) as response:
        return await response.json()


async def test_signup_makes_one_member_for_the_discord_account(discord_bot, engine):
    welcome = await discord_bot.text(NEWCOMER, "signup")
    assert welcome.startswith(f"Welcome to Flattr! Your account is di{NEWCOMER}. Set a "
                              "monthly budget with /budget 5")
    assert "react with 💸 to posts you like" in welcome
    assert await discord_bot.text(NEWCOMER, "signup", in_dm=True) == (
        f"You are di{NEWCOMER} on Flattr already. /balance tells where you stand.")
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(identities)) == 1


async def test_link_and_unlink(discord_bot, web_member, gateway_server):
    pia = await web_member("pia")
    code = (await web_call(gateway_server, pia.token, "POST", "/link-codes"))["code"]
    assert await discord_bot.text(NEWCOMER, "link", code=f" {code.lower()} ") == (
        "Linked: your flattrs on Discord are now pia's.")
    linked = await web_call(gateway_server, pia.token, "GET", "/identities")
    assert [i["identity"] for i in linked["identities"]] == [f"discord:{NEWCOMER}"]
    ola = await web_member("ola")
    other = (await web_call(gateway_server, ola.token, "POST", "/link-codes"))["code"]
    assert await discord_bot.text(NEWCOMER, "link", code=other) == (
        "This Discord account is linked already: /unlink it first.")
    assert await discord_bot.text(FAN, "link", code=code) == (
        "That link code is unknown or used up: make a new one on the website.")
    assert await discord_bot.text(FAN, "link", code="<script>") == (
        "That is not a link code: they look like ABCD-EFGH.")
    assert await discord_bot.text(FAN, "unlink") == (
        "This Discord account is not linked to Flattr.")
    assert await discord_bot.text(NEWCOMER, "unlink") == (
        "Unlinked: your reactions flattr nothing any more.")
    linked = await web_call(gateway_server, pia.token, "GET", "/identities")
    assert linked["identities"] == []


async def test_budget_and_unlink_change_the_account(discord_bot, fan, engine):
    assert await discord_bot.text(FAN, "budget", amount="5") == (
        "Your monthly budget is now 5.00 EUR.")
    assert await discord_bot.text(FAN, "unlink") == (
        "Unlinked: your reactions flattr nothing any more.")


async def test_web_answers_a_one_time_sign_in_link_only_to_the_user(discord_bot, fan,
                                                                    gateway_server):
    answer = await discord_bot.command(FAN, "web")
    assert answer["flags"] & 64 and answer["content"] == (
        "Your sign-in link to the Flattr website: it works once, for 15 minutes.")
    (button,) = answer["components"][0]["components"]
    assert button["label"] == "Sign in on the web"
    status, path, page = await use_sign_in_link(gateway_server, button["url"])
    assert (status, path) == (200, "/account") and "Welcome, fan" in page
    status, _, page = await use_sign_in_link(gateway_server, button["url"])
    assert status == 400 and "unknown, used or expired" in page
    assert await discord_bot.text(NEWCOMER, "web") == NOT_LINKED


async def test_balance_budget_and_stats(discord_bot, fan):
    assert await discord_bot.text(FAN, "balance") == (
        "**fan**\nTo give: 0.00 EUR\nReceived: 0.00 EUR\nHeld for you: 0.00 EUR\n"
        "Monthly budget: none set (/budget 5)")
    assert await discord_bot.text(FAN, "budget") == (
        "Your monthly budget: not set (at least 2.00 EUR). Change it with /budget amount.")
    assert await discord_bot.text(FAN, "budget", amount="5,5") == (
        "Your monthly budget is now 5.50 EUR.")  # a decimal comma, as many write it
    assert await discord_bot.text(FAN, "budget", amount="five") == (
        "`five` is not an amount: write it like 5 or 2.50.")
    assert await discord_bot.text(FAN, "budget", amount="1e3") == (
        "`1e3` is not an amount: write it like 5 or 2.50.")
    stats = await discord_bot.text(FAN, "stats")
    assert stats.endswith("You flattred 0 things, worth nothing yet: your budget or balance "
                          "is below the minimum.\nYou received 0 flattrs from 0 members.")


async def test_commands_of_a_user_without_an_account_say_how_to_start(discord_bot):
    for name, options in (("balance", {}), ("budget", {}), ("budget", {"amount": "5"}),
                          ("stats", {}), ("summary", {}),
                          ("flattr", {"url": "https://example.com/"})):
        assert await discord_bot.text(NEWCOMER, name, **options) == NOT_LINKED, name


async def test_flattr_and_unflattr_a_web_page(discord_bot, fan, engine, proxy):
    url = "https://example.com/post"
    assert await discord_bot.text(FAN, "flattr", url=url) == f"Flattred {url}"
    assert await discord_bot.text(FAN, "flattr", url=url) == (
        f"You flattred that already this month: {url}")
    assert await flattred(engine) == [("fan", url, None)]
    keys = {s.headers["Idempotency-Key"] for s in proxy.requests("/api/v1/flattrs")}
    assert len(keys) == 2  # one a command
    assert await discord_bot.text(FAN, "unflattr", url=url) == f"Taken back: {url}"
    assert await discord_bot.text(FAN, "unflattr", url=url) == (
        f"You have not flattred that this month: {url}")
    assert await flattred(engine) == []
    for bad in ("example.com", "ftp://example.com/x", "https://exa mple.com"):
        for name in ("flattr", "unflattr"):
            assert await discord_bot.text(FAN, name, url=bad) == (
                "Give the address of a web page, starting with https:// or http://.")
    refused = await discord_bot.text(FAN, "flattr", url="https://" + "x" * 300 + ".com/")
    assert refused and "Flattred" not in refused  # the gateway's own word on a bad URL


async def test_flattr_this_post_from_the_message_menu(discord_bot, fan, web_member, engine):
    await web_member("author", identity=f"discord:{AUTHOR}")
    events = discord_bot.events
    answer = await discord_bot.interact(events.flattr_this_post(FAN, CHANNEL, POST,
                                                                user(AUTHOR)))
    link = f"https://discord.com/channels/{GUILD}/{CHANNEL}/{POST}"
    assert answer["content"] == f"Flattred {link}" and answer["flags"] == 64
    assert await flattred(engine) == [("fan", f"discord:{GUILD}/{CHANNEL}/{POST}", "author")]
    answer = await discord_bot.interact(events.flattr_this_post(FAN, CHANNEL, POST,
                                                                user(AUTHOR)))
    assert answer["content"] == f"You flattred that already this month: {link}"
    answer = await discord_bot.interact(events.flattr_this_post(
        FAN, CHANNEL, POST + 1, user(AUTHOR + 5, bot=True)))
    assert answer["content"] == "I flattr people's posts, not bots'."
    answer = await discord_bot.interact(events.flattr_this_post(FAN, CHANNEL, POST + 2,
                                                                user(FAN)))
    assert answer["content"] == "That post is yours: you can't flattr it."
    answer = await discord_bot.interact(events.flattr_this_post(NEWCOMER, CHANNEL, POST,
                                                                user(AUTHOR)))
    assert answer["content"] == NOT_LINKED
    assert len(await flattred(engine)) == 1


async def test_summary_shows_the_last_monthly_summary_with_its_statement(discord_bot, fan,
                                                                          engine):
    assert await discord_bot.text(FAN, "summary") == (
        "No monthly summary yet: the first comes when your first month with Flattr has "
        "been settled.")
    await queue(engine, [message(fan.id, "2026-09"), message(fan.id, "2026-10"),
                         message(fan.id, "2026-11", kind="reminder")])
    answer = await discord_bot.command(FAN, "summary")
    assert answer["content"] == ("**Your Flattr month 2026-10**\n2026-10: 5.00 EUR shared "
                                 "among 3 things")
    (button,) = answer["components"][0]["components"]
    assert button["label"] == "Your statement"
    assert button["url"] == "https://flattr.example/statements/2026-10"


async def test_flattr_settings_are_for_server_managers(discord_bot, fan, gateway):
    assert await discord_bot.text(FAN, "flattr-settings") == (
        "Flattr in this server: react with 💸 in every channel.")
    assert await discord_bot.text(FAN, "flattr-settings", emoji="🔥") == (
        "Only members who may Manage Server change Flattr's settings here.")
    manager = {"permissions": MANAGE_GUILD}
    assert await discord_bot.text(FAN, "flattr-settings", emoji="🔥", **manager) == (
        "Flattr in this server: react with 🔥 in every channel.")
    assert await discord_bot.text(
        FAN, "flattr-settings", emoji=f"<:flattr:{CUSTOM_EMOJI}>",
        channels=f"<#{CHANNEL}> and <#{OTHER_CHANNEL}>", **manager) == (
        f"Flattr in this server: react with <:flattr:{CUSTOM_EMOJI}> in <#{CHANNEL}>, "
        f"<#{OTHER_CHANNEL}>.")
    stored = await gateway.chat_settings(f"discord:{GUILD}")
    assert stored.emoji == f"flattr:{CUSTOM_EMOJI}"
    assert stored.channels == (str(CHANNEL), str(OTHER_CHANNEL))
    for bad in ("flattr", "🔥 🔥", "x" * 70):
        assert (await discord_bot.text(FAN, "flattr-settings", emoji=bad, **manager)
                ).startswith(f"`{bad[:40]}` is not an emoji")
    assert await discord_bot.text(FAN, "flattr-settings", channels="#general", **manager) == (
        "Name 1 to 100 channels as #mentions, or 'all' for every channel.")
    assert await discord_bot.text(FAN, "flattr-settings", emoji="default", channels="all",
                                  **manager) == (
        "Flattr in this server: react with 💸 in every channel.")
    stored = await gateway.chat_settings(f"discord:{GUILD}")
    assert (stored.emoji, stored.channels) == (None, ())
    assert await discord_bot.text(FAN, "flattr-settings", in_dm=True) == (
        "Use /flattr-settings in the server whose settings you want to see or change.")


async def test_a_slow_answer_is_deferred_then_sent_as_a_follow_up(discord_bot, fan):
    discord_bot.bot.answer_within_seconds = 0.0
    answer = await discord_bot.command(FAN, "budget")
    assert answer["content"] == (
        "Your monthly budget: not set (at least 2.00 EUR). Change it with /budget amount.")
    assert answer["flags"] & 64
    deferred, follow_up = discord_bot.api.answers()
    assert deferred == {"type": 5, "flags": 64}
    assert follow_up["content"] == answer["content"]


async def test_the_menu_respects_the_servers_channels(discord_bot, fan, web_member, gateway,
                                                      engine):
    await web_member("author", identity=f"discord:{AUTHOR}")
    discord_bot.bot.servers.remember(await gateway.change_chat_settings(
        f"discord:{GUILD}", channels=[str(OTHER_CHANNEL)]))
    answer = await discord_bot.interact(discord_bot.events.flattr_this_post(
        FAN, CHANNEL, POST, user(AUTHOR)))
    assert answer["content"] == ("Flattr is off in this channel: the server's managers chose "
                                 "other channels.")
    assert await flattred(engine) == []


async def test_an_unlinked_author_flattred_from_the_menu_is_invited(discord_bot, fan, engine):
    answer = await discord_bot.interact(discord_bot.events.flattr_this_post(
        FAN, CHANNEL, POST, user(AUTHOR)))
    assert answer["content"].startswith("Flattred")
    assert await flattred(engine) == [("fan", f"discord:{GUILD}/{CHANNEL}/{POST}", None)]
    (invitation,) = discord_bot.api.dms(AUTHOR)
    assert "wait for you this month" in invitation["content"]
    async with engine.begin() as conn:
        assert await members.member_by_identity(conn, f"discord:{FAN}")
