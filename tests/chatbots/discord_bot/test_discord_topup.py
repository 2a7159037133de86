"""/topup through the real discord.py client and the Discord stand-in, against a real gateway
(each backend) whose card top-ups go to the Stripe stand-in on loopback: the card fee before
paying and Stripe's Checkout page as a link button, ephemerally; the gateway's words without
Stripe; the "link first" answer for a user without an account; a member in debt told."""

import pytest
from card_top_ups import checkouts, put_in_debt

from bots.discord.texts import NOT_LINKED
from core import funding, members

FAN, NEWCOMER = 100000000000000222, 100000000000000333
CARD = pytest.mark.parametrize("gateway_server", ["card"], indirect=True)


@pytest.fixture
async def fan(web_member):
    return await web_member("fan", identity=f"discord:{FAN}")


@CARD
async def test_topup_quotes_the_card_fee_and_answers_stripe_s_page_as_a_button(
    discord_bot, fan, engine, stripe_api
):
    assert await discord_bot.text(FAN, "topup") == (
        "Add funds by card with /topup and an amount, like 10: from 5.00 to 500.00 EUR. The "
        "card fee is added on top, so the whole amount reaches your giving balance.")
    answer = await discord_bot.command(FAN, "topup", amount="25,50", in_dm=True)
    assert answer["flags"] & 64 and answer["content"] == (
        "Top-up of 25.50 EUR: the card fee is 0.65 EUR, so you pay 26.15 EUR on Stripe's "
        "page. 25.50 EUR reaches your giving balance once Stripe confirms the payment.")
    (button,) = answer["components"][0]["components"]
    [asked] = stripe_api.requests
    session = stripe_api.replies[asked["Idempotency-Key"]]
    assert (button["label"], button["url"]) == ("Pay 26.15 EUR by card", session["url"])
    assert asked["metadata[flattr_member_id]"] == str(fan.id)
    assert await checkouts(engine) == [(session["id"], fan.id, 25_500_000)]

    # The same interaction answered again: the same payment page, no second session.
    again = discord_bot.events.command(FAN, "topup", {"amount": "10"})
    first = await discord_bot.interact(again)
    second = await discord_bot.interact(again)
    assert first["components"] == second["components"]
    assert len(await checkouts(engine)) == 2
    async with engine.connect() as conn:  # nothing is credited before Stripe confirms
        assert (await funding.funding_history(conn, fan.id))["fundings"] == []


@CARD
@pytest.mark.parametrize("amount, said", [
    ("4.99", "A top-up is between 5.00 and 500.00 EUR."),
    ("10.005", "A top-up is a whole number of cents."),
    ("ten", "`ten` is not an amount: write it like 10 or 12.50."),
    ("1e3", "`1e3` is not an amount: write it like 10 or 12.50."),
])
async def test_a_bad_amount_is_refused_before_stripe_is_asked(discord_bot, fan, engine,
                                                             stripe_api, amount, said):
    answer = await discord_bot.command(FAN, "topup", amount=amount)
    assert answer["content"] == said and not answer.get("components")
    assert stripe_api.requests == [] and await checkouts(engine) == []


@CARD
async def test_a_user_without_an_account_is_told_to_link_first(discord_bot, engine,
                                                               stripe_api):
    assert await discord_bot.text(NEWCOMER, "topup", amount="10") == NOT_LINKED
    assert await discord_bot.text(NEWCOMER, "topup") == NOT_LINKED
    assert stripe_api.requests == [] and await checkouts(engine) == []


@CARD
async def test_stripe_down_is_said_and_nothing_is_opened(discord_bot, fan, engine, stripe_api):
    stripe_api.fail = True
    assert await discord_bot.text(FAN, "topup", amount="10") == (
        "Stripe, the card payment service, can't be reached right now: try again later.")
    assert await checkouts(engine) == []


async def test_without_stripe_the_gateway_s_words_are_told(discord_bot, fan, engine):
    assert await discord_bot.text(FAN, "topup", amount="10") == (
        "Card funding is not configured on this deployment: ask an admin to credit you.")
    assert await discord_bot.text(FAN, "topup") == (
        "Card top-ups aren't offered on this Flattr: ask an admin to credit you.")
    assert await checkouts(engine) == []


@CARD
async def test_a_member_in_debt_is_told_and_pointed_to_topup(discord_bot, fan, engine,
                                                             settings):
    async with engine.begin() as conn:
        await funding.credit(conn, fan.id, 10_000_000, idempotency_key="fan-10")
        await members.set_budget(conn, fan.id, 6_000_000, settings)
    assert await put_in_debt(engine, settings, fan.id) == 6_000_000
    assert await discord_bot.text(FAN, "flattr", url="https://example.com/a") == (
        "You owe money after a card refund or dispute: /topup to repay it, then flattr again.")
    assert (await discord_bot.text(FAN, "topup")).startswith(
        "You owe 6.00 EUR after a card refund or dispute: your flattrs are paused until a "
        "top-up repays it.\nAdd funds by card with /topup and an amount")
