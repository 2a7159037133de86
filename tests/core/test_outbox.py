"""The outbox: one message per member, period and kind; deliveries leased, acknowledged,
failed with back-off, dead after their last try; an unreachable identity gets no more."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text, update

from core import members, notifications, outbox
from core.checks import run_checks
from core.errors import NotFound
from core.schema import identities, outbox_deliveries
from core.schema import outbox as outbox_table

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def summary(member_id: int, period: str = "2026-11", kind: str = "summary") -> outbox.Message:
    return outbox.Message(member_id, period, kind, f"Your {period}", {"n": member_id},
                          f"text for {member_id}", f"<p>html for {member_id}</p>")


async def a_member(engine, handle: str, *, email: str | None = None,
                   chats: tuple[str, ...] = ()) -> int:
    async with engine.begin() as conn:
        made = await members.create_member(conn, handle, email=email)
        for identity in chats:
            await members.link_identity(conn, made.id, identity)
    return made.id


async def queue(engine, *messages: outbox.Message) -> int:
    async with engine.begin() as conn:
        return await outbox.queue_messages(conn, list(messages), now=T0)


async def deliveries_of(engine, member_id: int) -> dict[tuple[str, str], str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox_deliveries.c.channel, outbox_deliveries.c.address,
                   outbox_deliveries.c.state)
            .where(outbox_deliveries.c.member_id == member_id)
        )
        return {(channel, address): state for channel, address, state in rows}


async def lease(engine, channel: str = "telegram", limit: int = 10, at: datetime = T0,
                seconds: int = 60) -> list[outbox.Leased]:
    async with engine.begin() as conn:
        return await outbox.lease(conn, channel, limit, lease_seconds=seconds, now=at)


async def test_a_message_is_written_once_per_member_period_and_kind(engine):
    ann = await a_member(engine, "ann")
    assert await queue(engine, summary(ann)) == 1
    assert await queue(engine, summary(ann)) == 0
    assert await queue(engine, summary(ann, kind="reminder"), summary(ann, "2026-12")) == 2
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox_table)) == 3


async def test_each_chosen_channel_gets_one_delivery(engine):
    ann = await a_member(engine, "ann", email="ann@example.com",
                         chats=("telegram:1", "discord:2"))
    bob = await a_member(engine, "bob", email="bob@example.com", chats=("telegram:3",))
    async with engine.begin() as conn:
        await notifications.choose(conn, ann, {"email": True, "discord": False})
    await queue(engine, summary(ann), summary(bob))
    await queue(engine, summary(ann))  # again: no second delivery
    assert await deliveries_of(engine, ann) == {("telegram", "telegram:1"): "pending",
                                                ("email", "ann@example.com"): "pending"}
    # E-mail is off unless turned on.
    assert await deliveries_of(engine, bob) == {("telegram", "telegram:3"): "pending"}


async def test_reminders_follow_their_own_setting(engine):
    ann = await a_member(engine, "ann", chats=("telegram:1",))
    async with engine.begin() as conn:
        await notifications.choose(conn, ann, {"reminders": False})
    await queue(engine, summary(ann, "2026-12", kind="reminder"), summary(ann))
    async with engine.connect() as conn:
        kinds = (await conn.execute(
            select(outbox_table.c.kind)
            .join(outbox_deliveries, outbox_deliveries.c.message_id == outbox_table.c.id)
        )).scalars().all()
    assert kinds == ["summary"]


async def test_a_lease_hands_a_delivery_out_once_until_it_runs_out(engine):
    ann = await a_member(engine, "ann", chats=("telegram:1",))
    await queue(engine, summary(ann))
    first = await lease(engine, seconds=60)
    assert [(d.address, d.attempts, d.text) for d in first] == [
        ("telegram:1", 1, f"text for {ann}")]
    assert await lease(engine, at=T0 + timedelta(seconds=59)) == []
    again = await lease(engine, at=T0 + timedelta(seconds=61))
    assert [(d.id, d.attempts) for d in again] == [(first[0].id, 2)]
    assert await lease(engine, "discord") == []


async def test_an_acknowledged_delivery_is_never_handed_out_again(engine):
    ann = await a_member(engine, "ann", chats=("telegram:1",))
    await queue(engine, summary(ann))
    [leased] = await lease(engine)
    async with engine.begin() as conn:
        assert await outbox.ack(conn, leased.id) == "sent"
        assert await outbox.ack(conn, leased.id) == "sent"  # again: nothing changes
        assert await outbox.fail(conn, leased.id, retry_after=1) == "sent"  # a late failure
    assert await lease(engine, at=T0 + timedelta(days=1)) == []
    async with engine.begin() as conn:
        with pytest.raises(NotFound):
            await outbox.ack(conn, leased.id + 1000)
        with pytest.raises(NotFound):  # not a delivery of that channel
            await outbox.ack(conn, leased.id, channel="discord")


async def test_failures_back_off_and_the_last_try_is_dead(engine):
    ann = await a_member(engine, "ann", chats=("telegram:1",))
    await queue(engine, summary(ann))
    at = T0
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        [leased] = await lease(engine, at=at)
        assert leased.attempts == attempt
        async with engine.begin() as conn:
            state = await outbox.fail(conn, leased.id, retry_after=0, reason="timeout", now=at)
        if attempt < outbox.MAX_ATTEMPTS:
            assert state == "pending"
            wait = outbox.backoff(attempt)
            assert await lease(engine, at=at + wait - timedelta(seconds=1)) == []
            at += wait
        else:
            assert state == "dead"
    assert await lease(engine, at=at + timedelta(days=30)) == []
    async with engine.connect() as conn:
        [dead] = await outbox.deliveries(conn, state="dead")
    assert (dead["attempts"], dead["last_error"]) == (outbox.MAX_ATTEMPTS, "timeout")
    async with engine.begin() as conn:
        retried = await outbox.retry(conn, dead["id"], now=at)
    assert (retried["state"], retried["attempts"]) == ("pending", 0)
    assert len(await lease(engine, at=at)) == 1


async def test_a_sender_asking_for_a_longer_wait_gets_it(engine):
    ann = await a_member(engine, "ann", chats=("telegram:1",))
    await queue(engine, summary(ann))
    [leased] = await lease(engine)
    async with engine.begin() as conn:
        await outbox.fail(conn, leased.id, retry_after=3600, now=T0)
    assert await lease(engine, at=T0 + timedelta(minutes=59)) == []
    assert len(await lease(engine, at=T0 + timedelta(minutes=61))) == 1


async def test_leases_that_run_out_too_often_are_dead(engine):
    ann = await a_member(engine, "ann", chats=("telegram:1",))
    await queue(engine, summary(ann))
    at = T0
    for _ in range(outbox.MAX_ATTEMPTS):
        assert len(await lease(engine, at=at, seconds=10)) == 1
        at += timedelta(seconds=11)
    assert await lease(engine, at=at) == []
    assert await deliveries_of(engine, ann) == {("telegram", "telegram:1"): "dead"}


async def test_a_permanent_failure_makes_the_identity_unreachable_until_turned_on(engine):
    ann = await a_member(engine, "ann", chats=("telegram:1", "discord:2"))
    await queue(engine, summary(ann), summary(ann, kind="reminder"))
    leased = await lease(engine)
    assert len(leased) == 2
    async with engine.begin() as conn:
        assert await outbox.fail(conn, leased[0].id, permanent=True,
                                 reason="Forbidden: bot was blocked by the user") == "unreachable"
    # The other message to that identity stops too; Discord is untouched.
    assert await deliveries_of(engine, ann) == {("telegram", "telegram:1"): "unreachable",
                                                ("discord", "discord:2"): "pending"}
    await queue(engine, summary(ann, "2026-12"))
    async with engine.connect() as conn:
        chosen = await notifications.settings_of(conn, ann)
        pending = await conn.scalar(
            select(func.count()).select_from(outbox_deliveries)
            .where(outbox_deliveries.c.address == "telegram:1",
                   outbox_deliveries.c.state == "pending"))
    assert pending == 0
    assert chosen["identities"][0] == {"identity": "telegram:1", "reachable": False,
                                       "unreachable_reason": "Forbidden: bot was blocked by "
                                                             "the user"}
    async with engine.begin() as conn:
        await notifications.choose(conn, ann, {"telegram": True})
        assert await conn.scalar(select(identities.c.unreachable_at)
                                 .where(identities.c.identity == "telegram:1")) is None
    await queue(engine, summary(ann, "2027-01"))
    async with engine.connect() as conn:
        assert await conn.scalar(
            select(func.count()).select_from(outbox_deliveries)
            .where(outbox_deliveries.c.address == "telegram:1",
                   outbox_deliveries.c.state == "pending")) == 1


async def test_email_needs_an_address(engine):
    ann = await a_member(engine, "ann")
    async with engine.begin() as conn:
        with pytest.raises(notifications.NoEmailAddress):
            await notifications.choose(conn, ann, {"email": True})
        assert (await notifications.settings_of(conn, ann))["email"] is False


async def test_depth_counts_what_waits_and_the_oldest(engine):
    ann = await a_member(engine, "ann", chats=("telegram:1", "discord:2"))
    await queue(engine, summary(ann))
    await lease(engine, "discord")
    async with engine.connect() as conn:
        found = await outbox.depth(conn, now=T0 + timedelta(minutes=5))
    assert found["states"] == {"pending": 1, "leased": 1, "dead": 0, "unreachable": 0}
    assert found["oldest_pending_seconds"] == 300


@pytest.mark.postgres_only
async def test_concurrent_leases_never_share_a_delivery(engine):
    ann = await a_member(engine, "ann", chats=tuple(f"telegram:{n}" for n in range(1, 41)))
    await queue(engine, summary(ann), summary(ann, "2026-12"))
    got = await asyncio.gather(*(lease(engine, limit=7) for _ in range(16)))
    ids = [d.id for batch in got for d in batch]
    assert len(ids) == len(set(ids)) == 80


@pytest.mark.postgres_only
async def test_burying_passes_over_a_delivery_a_sender_holds_without_waiting(engine):
    ann = await a_member(engine, "ann", chats=("telegram:1", "telegram:2", "telegram:3"))
    await queue(engine, summary(ann))
    async with engine.begin() as conn:  # three leases ran out after their last try
        ids = list(await conn.scalars(
            update(outbox_deliveries)
            .values(state="leased", attempts=outbox.MAX_ATTEMPTS, available_at=T0)
            .returning(outbox_deliveries.c.id)))
    ids.sort()
    later = T0 + timedelta(minutes=1)
    async with engine.begin() as sender:  # a late acknowledgement, not yet committed
        await outbox.ack(sender, ids[1], now=later)
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail
            assert await outbox.bury_exhausted(conn, now=later) == 2
    async with engine.begin() as conn:
        assert await outbox.bury_exhausted(conn, now=later) == 0
        states = dict((await conn.execute(
            select(outbox_deliveries.c.id, outbox_deliveries.c.state))).all())
    assert [states[i] for i in ids] == ["dead", "sent", "dead"]


@given(st.integers(min_value=1, max_value=200))
def test_backoff_doubles_up_to_its_cap(attempts):
    wait = outbox.backoff(attempts)
    assert outbox.FIRST_BACKOFF <= wait <= outbox.MAX_BACKOFF
    assert outbox.backoff(attempts + 1) == min(2 * wait, outbox.MAX_BACKOFF)


async def test_flattr_check_finds_a_message_or_delivery_naming_nothing(engine):
    """The outbox has no foreign keys (migration 0007): the invariant stands in for them."""
    ann = await a_member(engine, "ann", chats=("telegram:1",))
    await queue(engine, summary(ann))
    async with engine.connect() as conn:
        assert not await outbox_violations(conn)
        message_id = await conn.scalar(select(outbox_table.c.id))
    async with engine.begin() as conn:
        await conn.execute(outbox_table.insert().values(
            member_id=ann + 1000, period="2026-11", kind="summary", subject="s", data="{}",
            text="t", html="h", created_at=T0))
        await conn.execute(outbox_deliveries.insert(), [
            {"message_id": message_id + 1000, "member_id": ann, "channel": "telegram",
             "address": "telegram:1", "available_at": T0, "created_at": T0},
            {"message_id": message_id, "member_id": ann + 1, "channel": "telegram",
             "address": "telegram:2", "available_at": T0, "created_at": T0},
        ])
    async with engine.connect() as conn:
        found = await outbox_violations(conn)
    assert sorted((kind, member) for kind, _, member in found) == [
        ("delivery", ann), ("delivery", ann + 1), ("message", ann + 1000)]


async def outbox_violations(conn) -> list:
    findings = {f.invariant.name: f for f in await run_checks(conn)}
    return [(row["row"], row["id"], row["member_id"])
            for row in findings["outbox_reference"].violations]
