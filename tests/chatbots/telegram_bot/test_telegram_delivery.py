"""The delivery loop: outbox messages leased from a real gateway (each backend), sent through
PTB's rate limiter to the Bot API stand-in, acknowledged; 429s and blocked users."""

import time
from datetime import UTC, datetime

import pytest
from outbox_messages import chat_members, delivery_states, lease_ends, message, queue
from sqlalchemy import select

from bots.client import GatewayClient, Retrying
from bots.telegram.delivery import Deliverer
from core.schema import outbox_deliveries

STATEMENT = {"inline_keyboard": [[{"text": "Your statement",
                                   "url": "https://flattr.example/statements/2026-10"}]]}


@pytest.fixture
def deliverer(telegram, gateway) -> Deliverer:
    return Deliverer(telegram.app.bot, gateway, "https://flattr.example/", wait_seconds=0)


async def test_each_message_is_sent_privately_with_its_statement_and_acknowledged(
        telegram, deliverer, engine):
    member_ids = await chat_members(engine, 3)
    await queue(engine, [message(m) for m in member_ids])
    done = await deliverer.round()
    assert (done.sent, done.retried, done.unreachable) == (3, 0, 0)
    for chat_id in (1000, 1001, 1002):
        (sent,) = telegram.api.called("sendMessage", chat_id=chat_id)
        assert sent["text"] == "2026-10: 5.00 EUR shared among 3 things"
        assert sent["reply_markup"] == STATEMENT
    assert set((await delivery_states(engine)).values()) == {"sent"}
    await lease_ends(engine)
    assert (await deliverer.round()).sent == 0  # acknowledged: never sent again
    assert len(telegram.api.called("sendMessage")) == 3


async def test_a_429_is_waited_out_once_then_handed_back_with_its_retry_after(
        telegram, deliverer, engine):
    (member_id,) = await chat_members(engine, 1)
    await queue(engine, [message(member_id)])
    telegram.api.limit_next("sendMessage", retry_after=1)
    started = time.monotonic()
    assert (await deliverer.round()).sent == 1  # the limiter waited 1 s and sent it
    assert time.monotonic() - started >= 1.0
    await queue(engine, [message(member_id, period="2026-11")])
    telegram.api.limit_next("sendMessage", retry_after=2, count=2)
    before = datetime.now(UTC)
    done = await deliverer.round()
    assert (done.sent, done.retried) == (0, 1)
    async with engine.connect() as conn:
        row = (await conn.execute(select(outbox_deliveries).where(
            outbox_deliveries.c.state == "pending"))).one()
    available = row.available_at if row.available_at.tzinfo else row.available_at.replace(
        tzinfo=UTC)
    assert (available - before).total_seconds() >= 2 and row.attempts == 1
    await lease_ends(engine)
    assert (await deliverer.round()).sent == 1
    assert set((await delivery_states(engine)).values()) == {"sent"}
    assert len(telegram.api.sent_to(1000)) == 2


async def test_a_user_who_blocked_the_bot_is_a_permanent_failure(telegram, deliverer, engine):
    members = await chat_members(engine, 3)
    telegram.api.blocked.add(1001)
    await queue(engine, [message(m) for m in members])
    done = await deliverer.round()
    assert (done.sent, done.unreachable) == (2, 1)
    states = await delivery_states(engine)
    assert sorted(states.values()) == ["sent", "sent", "unreachable"]
    # Nothing more goes to the blocked user, and nobody gets a message twice.
    await queue(engine, [message(m, period="2026-11") for m in members])
    await lease_ends(engine)
    await deliverer.round()
    assert telegram.api.sent_to(1000) == telegram.api.sent_to(1002) != []
    assert len(telegram.api.sent_to(1000)) == 2
    assert len(telegram.api.called("sendMessage", chat_id=1001)) == 1


async def test_a_bot_that_died_holding_a_lease_leaves_its_messages_to_the_next(
        telegram, deliverer, gateway, engine):
    member_ids = await chat_members(engine, 4)
    await queue(engine, [message(m) for m in member_ids])
    held = await gateway.lease("telegram", max_messages=2, lease_seconds=60)  # then it dies
    assert (await deliverer.round()).sent == 2  # the others, at once
    await lease_ends(engine, [m.id for m in held])
    assert (await deliverer.round()).sent == 2
    assert {chat: len(telegram.api.sent_to(chat)) for chat in (1000, 1001, 1002, 1003)} == {
        1000: 1, 1001: 1, 1002: 1, 1003: 1}


async def test_an_idle_lease_waits_its_whole_wait_however_short_the_client_s_timeout(
        gateway_server, bot_token):
    # The lease call gets the wait and 10 s more: an idle outbox is an empty answer, not a
    # timeout that makes the delivery loop believe the gateway is down.
    async with GatewayClient(str(gateway_server.make_url("")), bot_token,
                             retrying=Retrying(attempts=1, timeout_seconds=1.0)) as gateway:
        started = time.monotonic()
        assert await gateway.lease("telegram", wait_seconds=2) == []
        assert time.monotonic() - started >= 1.5
