"""/topup through the real PTB Application and the Bot API stand-in, against a real gateway
(each backend) whose card top-ups go to the Stripe stand-in on loopback: the card fee before
paying and Stripe's Checkout page as a button, privately; the gateway's words without Stripe;
the "link first" answer for a user without an account; a member in debt pointed to /topup."""

import pytest
from card_top_ups import checkouts, put_in_debt
from sqlalchemy import select

from bots.telegram.texts import COMMANDS, help_text
from core import funding, members
from core.schema import identities
from telegram_standin import group

ANA, BEN = 111, 222
CARD = pytest.mark.parametrize("gateway_server", ["card"], indirect=True)
NOT_LINKED = "This Telegram account has no Flattr account yet. Send /start here"


def last_sent(telegram, chat_id: int) -> dict:
    return telegram.api.called("sendMessage", answered=200, chat_id=chat_id)[-1]


async def member_of(engine, user_id: int) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(identities.c.member_id).where(
            identities.c.identity == f"telegram:{user_id}"))


def test_topup_is_in_the_command_list_and_the_help():
    assert ("topup", "Add funds by card: /topup 10 (the card fee is shown first)") in COMMANDS
    assert "/topup - Add funds by card" in help_text("👍")


@CARD
async def test_topup_quotes_the_card_fee_and_sends_stripe_s_page_as_a_button(
    telegram, engine, stripe_api
):
    await telegram.start(ANA)
    await telegram.feed(telegram.updates.command(ANA, "/topup"))
    assert telegram.said_to(ANA)[-1] == (
        "Add funds by card with /topup AMOUNT, like /topup 10: from 5.00 to 500.00 EUR. The "
        "card fee is added on top, so the whole amount reaches your giving balance.")

    update = telegram.updates.command(ANA, "/topup 10")
    await telegram.feed(update)
    sent = last_sent(telegram, ANA)
    assert sent["text"] == (
        "Top-up of 10.00 EUR: the card fee is 0.41 EUR, so you pay 10.41 EUR on Stripe's "
        "page. 10.00 EUR reaches your giving balance once Stripe confirms the payment.")
    [[button]] = sent["reply_markup"]["inline_keyboard"]
    [asked] = stripe_api.requests
    session = stripe_api.replies[asked["Idempotency-Key"]]
    assert button == {"text": "Pay 10.41 EUR by card", "url": session["url"]}
    assert (asked["line_items[0][price_data][unit_amount]"],
            asked["line_items[1][price_data][unit_amount]"]) == ("1000", "41")
    member_id = await member_of(engine, ANA)
    assert await checkouts(engine) == [(session["id"], member_id, 10_000_000)]

    # Telegram delivers the same message again: the same payment page, no second session.
    await telegram.feed(update)
    assert last_sent(telegram, ANA)["reply_markup"] == sent["reply_markup"]
    assert len(await checkouts(engine)) == 1
    # A decimal comma, as many write it.
    await telegram.feed(telegram.updates.command(ANA, "/topup 12,50"))
    assert last_sent(telegram, ANA)["text"].startswith("Top-up of 12.50 EUR: the card fee is ")
    assert len(await checkouts(engine)) == 2
    async with engine.connect() as conn:  # nothing is credited before Stripe confirms
        assert (await funding.funding_history(conn, member_id))["fundings"] == []


@CARD
@pytest.mark.parametrize("text, said", [
    ("/topup 3", "A top-up is between 5.00 and 500.00 EUR."),
    ("/topup 500.01", "A top-up is between 5.00 and 500.00 EUR."),
    ("/topup 10.005", "A top-up is a whole number of cents."),
    ("/topup lots", "lots is not an amount: write it like 10 or 12.50."),
    ("/topup -5", "-5 is not an amount: write it like 10 or 12.50."),
])
async def test_a_bad_amount_is_refused_before_stripe_is_asked(telegram, engine, stripe_api,
                                                             text, said):
    await telegram.start(ANA)
    await telegram.feed(telegram.updates.command(ANA, text))
    assert telegram.said_to(ANA)[-1] == said
    assert "reply_markup" not in last_sent(telegram, ANA)
    assert stripe_api.requests == [] and await checkouts(engine) == []


@CARD
async def test_in_a_group_topup_answers_privately_and_opens_nothing(telegram, engine):
    chat = group()
    await telegram.start(ANA)
    await telegram.feed(telegram.updates.command(ANA, "/topup 10", chat=chat))
    assert telegram.api.sent_to(chat["id"]) == []
    assert telegram.said_to(ANA)[-1] == "Send /topup AMOUNT to me here, in our private chat."
    assert await checkouts(engine) == []


@CARD
async def test_a_user_without_an_account_is_told_to_link_first(telegram, engine, stripe_api):
    await telegram.feed(telegram.updates.command(BEN, "/topup 10"),
                        telegram.updates.command(BEN, "/topup"))
    assert [said.startswith(NOT_LINKED) for said in telegram.said_to(BEN)] == [True, True]
    assert stripe_api.requests == [] and await checkouts(engine) == []


@CARD
async def test_stripe_down_is_said_and_nothing_is_opened(telegram, engine, stripe_api):
    await telegram.start(ANA)
    stripe_api.fail = True
    await telegram.feed(telegram.updates.command(ANA, "/topup 10"))
    assert telegram.said_to(ANA)[-1] == (
        "Stripe, the card payment service, can't be reached right now: try again later.")
    assert await checkouts(engine) == []


async def test_without_stripe_the_gateway_s_words_are_told(telegram, engine):
    await telegram.start(ANA)
    await telegram.feed(telegram.updates.command(ANA, "/topup 10"),
                        telegram.updates.command(ANA, "/topup"))
    assert telegram.said_to(ANA)[-2:] == [
        "Card funding is not configured on this deployment: ask an admin to credit you.",
        "Card top-ups aren't offered on this Flattr: ask an admin to credit you."]
    assert await checkouts(engine) == []


@CARD
async def test_a_member_in_debt_is_told_and_pointed_to_topup(telegram, engine, settings):
    await telegram.start(ANA)
    member_id = await member_of(engine, ANA)
    async with engine.begin() as conn:
        await funding.credit(conn, member_id, 10_000_000, idempotency_key="ana-10")
        await members.set_budget(conn, member_id, 6_000_000, settings)
    assert await put_in_debt(engine, settings, member_id) == 6_000_000

    await telegram.feed(telegram.updates.command(ANA, "/flattr https://example.com/a"))
    assert telegram.said_to(ANA)[-1] == (
        "You owe money after a card refund or dispute: /topup to repay it, then flattr again.")
    await telegram.feed(telegram.updates.command(ANA, "/topup"))
    assert telegram.said_to(ANA)[-1].startswith(
        "You owe 6.00 EUR after a card refund or dispute: your flattrs are paused until a "
        "top-up repays it.\nAdd funds by card with /topup AMOUNT")
