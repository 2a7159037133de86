"""Card top-ups through the real gateway: quote, Checkout session (the official stripe client
against a stand-in of Stripe's API on loopback), and Stripe's webhooks signed with a test
secret; the IBAN a member stores for payouts. On SQLite and PostgreSQL."""

import asyncio
import time

import pytest
from raw_http import exchange, request_head
from sqlalchemy import func, select

from core import flattrs
from core.checks import run_checks
from core.funding import owed_by
from core.funding.stripe import seal
from core.money import parse_amount as eur
from core.periods import Period
from core.schema import stripe_events
from core.settings import Settings
from core.settlement import settle_period
from gateway.app import create_app
from stripe_standin import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeStandIn,
    charge_refunded,
    dispute_created,
    payload,
    session_paid,
    sign,
)


@pytest.fixture
async def stripe_api(aiohttp_server):
    standin = StripeStandIn()
    server = await aiohttp_server(standin.app())
    standin.base = str(server.make_url("")).rstrip("/")
    return standin


def card_settings(database_url: str, stripe_api: StripeStandIn | None) -> Settings:
    if stripe_api is None:
        return Settings(database_url=database_url, redis_url=None)
    return Settings(database_url=database_url, redis_url=None, stripe_secret_key=SECRET_KEY,
                    stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=stripe_api.base)


@pytest.fixture
async def card_client(aiohttp_client, database_url, gateway_settings, stripe_api):
    app = create_app(card_settings(database_url, stripe_api), gateway_settings)
    return await aiohttp_client(app)


class Caller:
    def __init__(self, client, token: str) -> None:
        self.client, self.auth = client, {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, status: int, **kwargs) -> dict:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        response = await self.client.request(method, "/api/v1" + path, headers=headers,
                                             **kwargs)
        body = await response.json()
        assert response.status == status, body
        return body


async def post_event(client, made: dict, *, secret: str = WEBHOOK_SECRET,
                     at: int | None = None, status: int = 200) -> dict:
    body = payload(made)
    response = await client.post("/webhooks/stripe", data=body, headers={
        "Stripe-Signature": sign(body, secret, at), "Content-Type": "application/json"})
    answer = await response.json()
    assert response.status == status, answer
    return answer


async def violations(engine) -> dict:
    async with engine.connect() as conn:
        return {f.invariant.name: f.violations for f in await run_checks(conn) if not f.holds}


async def test_a_top_up_is_quoted_opened_paid_by_its_webhook_and_credited_once(
    card_client, stripe_api, privileged, engine,
):
    member_id, token = await privileged("ann", "read,flattr,account")
    ann = Caller(card_client, token)
    quote = await ann.call("GET", "/fundings/quote?amount=10.00", 200)
    assert (quote["amount"], quote["fee_estimate"], quote["total"]) == ("10.00", "0.41", "10.41")

    opened = await ann.call("POST", "/fundings", 201, json={"amount": "10"},
                            headers={"Idempotency-Key": "top-up-1"})
    assert opened["checkout_url"].startswith("https://checkout.stripe.test/pay/")
    assert (opened["amount"], opened["fee_estimate"]) == ("10.00", "0.41")
    again = await ann.call("POST", "/fundings", 201, json={"amount": "10"},
                           headers={"Idempotency-Key": "top-up-1"})
    assert again["session_id"] == opened["session_id"]
    [asked] = stripe_api.requests
    assert (asked["line_items[0][price_data][unit_amount]"],
            asked["line_items[1][price_data][unit_amount]"]) == ("1000", "41")
    assert asked["metadata[flattr_member_id]"] == str(member_id)
    assert asked["metadata[flattr_seal]"] == seal(WEBHOOK_SECRET, member_id, eur("10"))
    assert (await ann.call("GET", "/fundings", 200))["open_checkouts"][0]["amount"] == "10.00"

    paid = session_paid(opened["session_id"], "pi_ann", 1041)
    bad = [  # another secret, a stale signature: refused, nothing changes
        await post_event(card_client, paid, secret="whsec_other", status=400),
        await post_event(card_client, paid, at=int(time.time()) - 3600, status=400),
    ]
    assert {b["error"]["code"] for b in bad} == {"invalid_signature"}
    unsigned = await card_client.post("/webhooks/stripe", data=payload(paid))
    assert unsigned.status == 400
    assert (await ann.call("GET", "/me", 200))["balances"]["giving"] == "0.00"

    first = await post_event(card_client, paid)
    replay = await post_event(card_client, paid)
    assert (first["state"], first["replayed"], replay["replayed"]) == ("done", False, True)
    me = await ann.call("GET", "/me", 200)
    assert me["balances"]["giving"] == "10.00" and me["balances"]["debt"] == "0.00"
    history = await ann.call("GET", "/fundings", 200)
    assert [(f["source"], f["amount"]) for f in history["fundings"]] == [("stripe", "10.00")]
    assert history["open_checkouts"] == [] and history["card_funding"] is True
    assert await violations(engine) == {}


async def test_a_dispute_after_the_month_was_given_blocks_flattrs_until_a_top_up(
    card_client, privileged, engine, settings,
):
    member_id, token = await privileged("ann", "read,flattr,account")
    ann = Caller(card_client, token)
    await ann.call("PUT", "/me/budget", 200, json={"amount": "10"})
    # The refund comes before the payment's own event: it waits for it.
    early = await post_event(card_client, charge_refunded("pi_1", 200))
    assert early["state"] == "waiting"
    await post_event(card_client, session_paid("cs_1", "pi_1", 1041, member_id=member_id,
                                               amount_micros=eur("10")))
    assert (await ann.call("GET", "/me", 200))["balances"]["giving"] == "8.00"

    async with engine.begin() as conn:  # a month before this one, given away at its end
        await flattrs.flattr(conn, member_id, "https://blog.example/a",
                             period=Period.parse("2026-01"))
    await settle_period(engine, Period.parse("2026-01"), settings)
    assert (await ann.call("GET", "/me", 200))["balances"]["giving"] == "0.00"

    await post_event(card_client, dispute_created("pi_1", 1041, "dp_1"))
    me = await ann.call("GET", "/me", 200)
    assert (me["balances"]["giving"], me["balances"]["debt"]) == ("0.00", "8.00")
    for path, body in (("/flattrs", {"url": "https://blog.example/b"}),
                       ("/subscriptions", {"url": "https://blog.example/b", "months": 3}),
                       ("/payouts", {})):
        refused = await ann.call("POST", path, 402, json=body)
        assert refused["error"]["code"] == "debt_outstanding", path
    assert (await ann.call("GET", "/subscriptions", 200))["subscriptions"] == []
    assert await violations(engine) == {}

    await post_event(card_client, session_paid("cs_2", "pi_2", 1550, member_id=member_id,
                                               amount_micros=eur("15")))
    me = await ann.call("GET", "/me", 200)
    assert (me["balances"]["giving"], me["balances"]["debt"]) == ("7.00", "0.00")
    async with engine.connect() as conn:
        assert await owed_by(conn, member_id) == 0
    await ann.call("POST", "/flattrs", 201, json={"url": "https://blog.example/b"})
    assert await violations(engine) == {}


async def test_a_session_this_deployment_did_not_open_is_answered_and_credits_nothing(
    card_client, privileged, engine,
):
    """Stripe sends every endpoint of the account every session: another deployment's, or
    one naming a member unknown here, gets its 200 (Stripe stops sending it) and nothing."""
    member_id, token = await privileged("ann", "read")
    for made in (session_paid("cs_o1", "pi_o1", 1041, member_id=member_id,
                              amount_micros=eur("10"), seal_secret="whsec_staging"),
                 session_paid("cs_o2", "pi_o2", 1041, member_id=member_id + 1000,
                              amount_micros=eur("10"))):
        answer = await post_event(card_client, made)
        assert (answer["state"], answer["replayed"]) == ("ignored", False)
    me = await Caller(card_client, token).call("GET", "/me", 200)
    assert me["balances"]["giving"] == "0.00"
    assert await violations(engine) == {}


@pytest.mark.parametrize("amount", ["4.99", "500.01", "10.005", "-1", "ten"])
async def test_top_ups_outside_the_limits_are_refused_before_stripe_is_asked(
    card_client, stripe_api, privileged, amount,
):
    _, token = await privileged("ann", "read,account")
    ann = Caller(card_client, token)
    refused = await ann.call("POST", "/fundings", 400, json={"amount": amount})
    assert refused["error"]["code"] == "invalid_amount"
    assert stripe_api.requests == []


async def test_stripe_failing_or_absent_is_said_plainly(
    aiohttp_client, card_client, stripe_api, privileged, database_url, gateway_settings,
):
    _, token = await privileged("ann", "read,account")
    stripe_api.fail = True
    down = await Caller(card_client, token).call("POST", "/fundings", 503,
                                                 json={"amount": "10"})
    assert down["error"]["code"] == "payment_provider_unavailable"

    bare = await aiohttp_client(create_app(card_settings(database_url, None), gateway_settings))
    ann = Caller(bare, token)
    for method, path in (("POST", "/fundings"), ("GET", "/fundings/quote?amount=10")):
        answer = await ann.call(method, path, 409, json={"amount": "10"})
        assert answer["error"]["code"] == "funding_unavailable"
    assert (await ann.call("GET", "/fundings", 200))["card_funding"] is False
    webhook = await bare.post("/webhooks/stripe", data=b"{}")
    assert webhook.status == 409


async def test_a_malformed_event_with_a_good_signature_is_refused(card_client, engine):
    for body in (b"not json", b"[]", b'{"id": "evt_1"}'):
        response = await card_client.post("/webhooks/stripe", data=body,
                                          headers={"Stripe-Signature": sign(body)})
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_event"
    assert await violations(engine) == {}


async def test_a_member_keeps_an_iban_and_name_for_payouts(card_client, privileged):
    _, token = await privileged("hal", "read,account")
    hal = Caller(card_client, token)
    assert (await hal.call("GET", "/me/payout-account", 200))["payout_account"] is None
    stored = await hal.call("PUT", "/me/payout-account", 200,
                            json={"iban": "de89 3704 0044 0532 0130 00", "name": " Hal  Doe"})
    assert stored["payout_account"] == {"iban": "DE89370400440532013000", "name": "Hal Doe",
                                        "bic": None}
    for bad in ({"iban": "DE89370400440532013001", "name": "Hal"},
                {"iban": "BR1800360305000010009795493C1", "name": "Hal"},
                {"iban": "DE89370400440532013000", "name": "Hal", "bic": "ABNAXX2A"}):
        refused = await hal.call("PUT", "/me/payout-account", 400, json=bad)
        assert refused["error"]["code"] == "invalid_bank_account"
    shown = await hal.call("GET", "/me/payout-account", 200)
    assert shown["payout_account"]["iban"] == "DE89370400440532013000"
    assert (await hal.call("DELETE", "/me/payout-account", 200))["removed"] is True
    assert (await hal.call("GET", "/me/payout-account", 200))["payout_account"] is None


async def test_the_same_event_delivered_twice_at_once_credits_once(card_client, privileged,
                                                                   engine):
    member_id, token = await privileged("ann", "read")
    paid = session_paid("cs_7", "pi_7", 1041, member_id=member_id, amount_micros=eur("10"))
    answers = await asyncio.gather(*(post_event(card_client, paid) for _ in range(4)))
    assert sorted(a["replayed"] for a in answers) == [False, True, True, True]
    assert (await Caller(card_client, token).call("GET", "/me", 200))["balances"][
        "giving"] == "10.00"
    assert await violations(engine) == {}


@pytest.mark.parametrize("header", [
    b"t=1700000000,v1=" + "é".encode() * 32,  # UTF-8, not ASCII
    b"t=1700000000,v1=\xff\xfe" + b"0" * 62,  # not even UTF-8
    "t=1700000000,v1=0,v1=ü".encode(),
], ids=["utf-8", "undecodable", "second-signature"])
async def test_a_signature_header_that_is_not_ascii_is_a_bad_signature(
    card_client, privileged, engine, header,
):
    member_id, token = await privileged("ann", "read")
    body = payload(session_paid("cs_8", "pi_8", 1041, member_id=member_id,
                                amount_micros=eur("10")))
    head = request_head("POST", "/webhooks/stripe", {
        "Content-Type": "application/json", "Content-Length": str(len(body))})
    head = head[:-2] + b"Stripe-Signature: " + header + b"\r\n\r\n"
    answer = await exchange(card_client.host, card_client.port, head + body)
    assert answer.status == 400, answer.body
    assert answer.json()["error"]["code"] == "invalid_signature"
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(stripe_events))).scalar() == 0
    me = await Caller(card_client, token).call("GET", "/me", 200)
    assert me["balances"]["giving"] == "0.00"
    assert await violations(engine) == {}


async def test_a_flattr_token_may_open_a_top_up_and_a_read_only_one_may_not(
    card_client, stripe_api, privileged,
):
    _, extension_token = await privileged("eve", "read,flattr")  # the extension's scopes
    opened = await Caller(card_client, extension_token).call(
        "POST", "/fundings", 201, json={"amount": "5"})
    assert opened["checkout_url"].startswith("https://checkout.stripe.test/pay/")
    _, reader_token = await privileged("rob", "read")
    refused = await Caller(card_client, reader_token).call(
        "POST", "/fundings", 403, json={"amount": "5"})
    assert refused["error"]["code"] == "insufficient_scope"
    assert len(stripe_api.requests) == 1
