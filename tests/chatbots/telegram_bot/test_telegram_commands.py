"""The bot's commands, through the real PTB Application, the Bot API stand-in and a real
gateway on each backend."""

import aiohttp
import pytest
from sqlalchemy import func, select
from web_sign_in_link import use_sign_in_link

from bots.telegram.texts import COMMANDS
from core.schema import flattrs, identities
from telegram_standin import group

ANA, BEN = 111, 222


async def rows(engine, table) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(table))


async def web_call(gateway_server, token: str, method: str, path: str, **kwargs) -> dict:
    async with aiohttp.ClientSession() as session, session.request(
        method, str(gateway_server.make_url("/api/v1" + path)),
        headers={"Authorization": f"Bearer {token}"}, **kwargs) as response:
        return await response.json()


async def test_start_registers_the_commands_and_makes_one_member(telegram, engine):
    (registered,) = telegram.api.called("setMyCommands")
    assert [c["command"] for c in registered["commands"]] == [name for name, _ in COMMANDS]
    await telegram.start(ANA)
    (welcome,) = telegram.said_to(ANA)
    assert welcome.startswith("Welcome to Flattr! Your account is te111")
    await telegram.start(ANA)
    assert telegram.said_to(ANA)[1] == "You are te111 on Flattr. /help tells what I do."
    assert await rows(engine, identities) == 1


async def test_a_deep_link_links_the_user_to_the_member_of_the_code(telegram, web_member,
                                                                    gateway_server):
    pia = await web_member("pia")
    code = (await web_call(gateway_server, pia.token, "POST", "/link-codes"))["code"]
    await telegram.feed(telegram.updates.command(ANA, f"/start {code}"))
    assert telegram.said_to(ANA) == ["Linked: your flattrs here are now pia's."]
    linked = await web_call(gateway_server, pia.token, "GET", "/identities")
    assert [i["identity"] for i in linked["identities"]] == [f"telegram:{ANA}"]
    # The code is used up; a made-up one is refused, and so is a payload that is no code.
    await telegram.feed(telegram.updates.command(BEN, f"/start {code}"),
                        telegram.updates.command(BEN, "/link ZZZZ-ZZZZ"),
                        telegram.updates.command(BEN, "/link <script>"))
    assert telegram.said_to(BEN) == [
        "That link code is unknown or used up: make a new one on the website."] * 2 + [
        "That is not a link code: they look like ABCD-EFGH."]


async def test_answers_to_commands_in_a_group_go_to_the_private_chat(telegram, web_member,
                                                                     gateway_server):
    chat = group()
    await telegram.feed(telegram.updates.command(ANA, "/balance", chat=chat))
    # Never talked to the bot: Telegram forbids writing first, so nothing is sent anywhere.
    assert telegram.api.called("sendMessage") == []
    await telegram.start(ANA)
    await telegram.feed(telegram.updates.command(ANA, "/balance", chat=chat))
    assert telegram.api.sent_to(chat["id"]) == []
    assert telegram.said_to(ANA)[-1].startswith("te111\nTo give: 0.00")


async def test_a_link_code_sent_in_a_group_is_not_used(telegram, web_member, gateway_server):
    pia = await web_member("pia")
    code = (await web_call(gateway_server, pia.token, "POST", "/link-codes"))["code"]
    chat = group()
    await telegram.feed(telegram.updates.command(BEN, "/help"))  # talked: may be told
    await telegram.feed(telegram.updates.command(BEN, f"/link {code}", chat=chat))
    assert telegram.api.sent_to(chat["id"]) == []
    assert telegram.said_to(BEN)[-1] == (
        "Send /link CODE to me here, never in a group: everyone there saw that code, so I "
        "did not use it. Make a new one on the website.")
    linked = await web_call(gateway_server, pia.token, "GET", "/identities")
    assert linked["identities"] == []


async def test_flattr_and_unflattr_a_url_and_the_month_s_stats(telegram, engine):
    await telegram.start(ANA)
    await telegram.feed(telegram.updates.command(ANA, "/flattr https://Example.com/a?utm_x=1"),
                        telegram.updates.command(ANA, "/flattr https://example.com/a"))
    assert telegram.said_to(ANA)[1:] == [
        "Flattred https://Example.com/a?utm_x=1.",
        "You flattred https://example.com/a already this month."]
    await telegram.feed(telegram.updates.command(ANA, "/stats"))
    stats = telegram.said_to(ANA)[-1]
    assert "You flattred 1 things" in stats and "received 0 flattrs from 0 members" in stats
    await telegram.feed(telegram.updates.command(ANA, "/unflattr https://example.com/a"),
                        telegram.updates.command(ANA, "/unflattr https://example.com/a"))
    assert telegram.said_to(ANA)[-2:] == ["Taken back.",
                                          "You have not flattred that this month."]
    assert await rows(engine, flattrs) == 0


async def test_a_url_in_a_reply_to_the_bot_is_flattred(telegram, engine):
    await telegram.start(ANA)
    bot_message = {"message_id": 5, "date": 0, "chat": {"id": ANA, "type": "private"},
                   "from": {"id": 1, "is_bot": True, "first_name": "Flattr"}, "text": "Hi"}
    await telegram.feed(telegram.updates.message(
        {"id": ANA, "type": "private"}, {"id": ANA, "is_bot": False, "first_name": "Ana"},
        "this one: https://example.com/b", reply_to=bot_message))
    assert telegram.said_to(ANA)[-1] == "Flattred https://example.com/b."
    assert await rows(engine, flattrs) == 1


@pytest.mark.parametrize("text, answer", [
    ("/flattr javascript:alert(1)", "javascript"),
    ("/flattr ftp://example.com/file", "ftp"),
    ("/flattr http://", "http"),
    ("/flattr " + "https://example.com/" + "a" * 3000, "2048 characters"),
    ("/flattr", "Send /flattr URL, or reply /flattr to a post."),
])
async def test_flattr_with_a_bad_url_is_refused_and_changes_nothing(telegram, engine, text,
                                                                    answer):
    await telegram.start(ANA)
    await telegram.feed(telegram.updates.command(ANA, text))
    refusal = telegram.said_to(ANA)[-1]
    assert answer in refusal and not refusal.startswith("Flattred")
    assert await rows(engine, flattrs) == 0


async def test_a_user_without_an_account_is_told_how_to_make_one(telegram, engine):
    await telegram.feed(telegram.updates.command(ANA, "/help"))  # talked, no member
    await telegram.feed(telegram.updates.command(ANA, "/flattr https://example.com/"))
    assert telegram.said_to(ANA)[-1].startswith(
        "This Telegram account has no Flattr account yet. Send /start here")
    assert await rows(engine, flattrs) == 0


async def test_web_sends_a_one_time_sign_in_link_only_privately(telegram, gateway_server):
    await telegram.start(ANA)
    chat = group()
    await telegram.feed(telegram.updates.command(ANA, "/web", chat=chat))
    assert telegram.api.sent_to(chat["id"]) == []
    told = telegram.said_to(ANA)[-1]
    first, url = told.split("\n")
    assert first == "Your sign-in link to the Flattr website (it works once, for 15 minutes):"
    status, path, page = await use_sign_in_link(gateway_server, url)
    assert (status, path) == (200, "/account") and f"Welcome, te{ANA}" in page
    status, _, page = await use_sign_in_link(gateway_server, url)
    assert status == 400 and "unknown, used or expired" in page
    await telegram.feed(telegram.updates.command(ANA, "/web"))
    assert telegram.said_to(ANA)[-1].split("\n")[1] != url  # a new link each time


async def test_web_tells_a_user_without_an_account_how_to_make_one(telegram):
    await telegram.feed(telegram.updates.command(BEN, "/web"))
    (told,) = telegram.said_to(BEN)
    assert told.startswith("This Telegram account has no Flattr account yet. Send /start here")
    assert "/sign-in/link/" not in told


async def test_budget_shows_the_budget_and_its_minimum(telegram):
    await telegram.start(ANA)
    await telegram.feed(telegram.updates.command(ANA, "/budget"))
    assert telegram.said_to(ANA)[-1] == (
        "Your monthly budget: not set (at least 2.00 EUR). Change it with /budget AMOUNT.")
    await telegram.feed(telegram.updates.command(ANA, "/budget lots"))
    assert telegram.said_to(ANA)[-1] == "lots is not an amount: write it like 5 or 2.50."


async def test_budget_and_unlink_change_the_account(telegram, engine):
    await telegram.start(ANA)
    await telegram.feed(telegram.updates.command(ANA, "/budget 5"))
    assert telegram.said_to(ANA)[-1] == "Your monthly budget is now 5.00 EUR."
    await telegram.feed(telegram.updates.command(ANA, "/budget 1"))
    assert "2.00" in telegram.said_to(ANA)[-1] and "now" not in telegram.said_to(ANA)[-1]
    await telegram.feed(telegram.updates.command(ANA, "/unlink"))
    assert telegram.said_to(ANA)[-1].startswith("Unlinked")
    assert await rows(engine, identities) == 0
    await telegram.feed(telegram.updates.command(ANA, "/unlink"))
    assert telegram.said_to(ANA)[-1].startswith("This Telegram account has no Flattr account")


async def test_settings_by_a_chat_admin_changes_the_chat_s_emoji(telegram, gateway):
    chat = group()
    await telegram.start(ANA)
    await telegram.start(BEN)
    telegram.api.members[(chat["id"], ANA)] = "administrator"
    await telegram.feed(telegram.updates.command(BEN, "/settings 🔥", chat=chat))
    assert telegram.said_to(BEN)[-1] == "Only the admins of Readers change its settings."
    await telegram.feed(telegram.updates.command(ANA, "/settings 💸", chat=chat))
    assert "is not one of Telegram's reaction emoji" in telegram.said_to(ANA)[-1]
    await telegram.feed(telegram.updates.command(ANA, "/settings 🔥", chat=chat))
    assert telegram.api.sent_to(chat["id"]) == ["Flattr emoji of this chat: 🔥"]
    assert (await gateway.chat_settings(f"telegram:{chat['id']}")).emoji == "🔥"
    await telegram.feed(telegram.updates.command(ANA, "/settings", chat=chat))
    assert telegram.said_to(ANA)[-1] == "Readers: the flattr emoji is 🔥."


async def test_claim_makes_a_channel_its_admin_s(telegram, gateway):
    telegram.api.add_channel(-1009876543210, "flattr_news", "News")
    await telegram.start(ANA)
    await telegram.start(BEN)
    telegram.api.members[(-1009876543210, ANA)] = "creator"
    await telegram.feed(telegram.updates.command(BEN, "/claim @flattr_news"),
                        telegram.updates.command(BEN, "/claim @nowhere"))
    assert telegram.said_to(BEN)[-2:] == ["You are not an admin of News.",
                                          "I can't see @nowhere: add me to it as an admin first."]
    assert (await gateway.chat_settings("telegram:-1009876543210")).owner is None
    await telegram.feed(telegram.updates.command(ANA, "/claim @flattr_news"))
    assert telegram.said_to(ANA)[-1] == "News is yours: flattrs of its posts go to you."
    assert (await gateway.chat_settings("telegram:-1009876543210")).owner == f"telegram:{ANA}"
