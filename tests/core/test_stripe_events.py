"""Stripe's events applied once each, in whatever order and however often they arrive."""

import asyncio
import os

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from core import ledger, members
from core.checks import run_checks
from core.clock import utc_now
from core.db import create_engine
from core.funding import owed_by
from core.funding.stripe import seal
from core.funding.stripe_events import receive_event
from core.money import parse_amount as eur
from core.schema import funding_reversals, stripe_checkouts, stripe_events
from core.settings import Settings
from stripe_standin import (
    WEBHOOK_SECRET,
    charge_refunded,
    dispute_closed,
    dispute_created,
    session_expired,
    session_paid,
)
from world import World

EXAMPLES = hypothesis_settings(
    max_examples=int(os.environ.get("FLATTR_PROPERTY_EXAMPLES", "25")),
    deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def open_checkout(conn, member_id: int, session_id: str, amount: str, fee: str) -> None:
    await conn.execute(stripe_checkouts.insert().values(
        session_id=session_id, member_id=member_id, amount_micros=eur(amount),
        fee_micros=eur(fee), status="open", created_at=utc_now()))


async def ann_with_a_checkout(engine) -> int:
    """Ann, who opened a 10 EUR top-up (10.41 with the card fee) as session cs_1."""
    async with engine.begin() as conn:
        ann = (await members.create_member(conn, "ann")).id
        await open_checkout(conn, ann, "cs_1", "10", "0.41")
    return ann


@EXAMPLES
@given(order=st.permutations(range(6)), again=st.lists(st.integers(0, 5), max_size=4))
def test_any_order_and_any_repeat_give_the_same_balances(databases, order, again):
    asyncio.run(deliver(databases.new_url(), order, again))


async def deliver(url: str, order: list[int], again: list[int]) -> None:
    """A 10 EUR top-up (10.41 with the card fee), refunded 3 then 5 in all, disputed 1
    (at most what was credited is ever taken back), and its expiry (too late to matter)."""
    events = [
        session_paid("cs_1", "pi_1", 1041),
        charge_refunded("pi_1", 300),
        charge_refunded("pi_1", 500),
        dispute_created("pi_1", 100, "dp_1"),
        session_expired("cs_1"),
        session_paid("cs_1", "pi_1", 1041, kind="checkout.session.async_payment_succeeded"),
    ]
    settings = Settings(database_url=url)
    engine = create_engine(url)
    try:
        ann = await ann_with_a_checkout(engine)
        for index in [*order, *again]:
            async with engine.begin() as conn:
                await receive_event(conn, events[index], settings)
        async with engine.connect() as conn:
            giving = await ledger.balance(conn, await ledger.member_account(conn, ann, "giving"))
            external = await ledger.balance(conn, await ledger.system_account(conn, "external"))
            states = dict((await conn.execute(
                select(stripe_events.c.event_id, stripe_events.c.state))).all())
            status = await conn.scalar(select(stripe_checkouts.c.status))
            broken = {f.invariant.name: f.violations for f in await run_checks(conn)
                      if not f.holds}
        assert (giving, external) == (eur("4"), -eur("4"))  # 10 in, 5 refunded, 1 disputed
        assert status == "paid"
        assert "waiting" not in states.values()
        assert len(states) == len(events)
        assert broken == {}
    finally:
        await engine.dispose()


@EXAMPLES
@given(refunded=st.lists(st.integers(1, 1200), min_size=2, max_size=5),
       disputed=st.integers(0, 1200))
def test_refunds_delivered_at_once_take_back_their_largest_total_at_most(
        databases, refunded, disputed):
    """Each `charge.refunded` names Stripe's running total: however many arrive at once,
    together they take back the largest total (at most what was credited), never more."""
    asyncio.run(deliver_at_once(databases.new_url(), refunded, disputed))


async def deliver_at_once(url: str, refunded: list[int], disputed: int) -> None:
    settings = Settings(database_url=url)
    engine = create_engine(url)
    try:
        await ann_with_a_checkout(engine)
        async with engine.begin() as conn:
            await receive_event(conn, session_paid("cs_1", "pi_1", 1041), settings)
        events = [charge_refunded("pi_1", cents) for cents in refunded]
        if disputed:
            events.append(dispute_created("pi_1", disputed, "dp_1"))

        async def receive(made: dict) -> None:
            async with engine.begin() as conn:
                await receive_event(conn, made, settings)

        await asyncio.gather(*(receive(made) for made in events))
        async with engine.connect() as conn:
            taken = {kind: int(total) for kind, total in await conn.execute(
                select(funding_reversals.c.kind, func.sum(funding_reversals.c.amount_micros))
                .group_by(funding_reversals.c.kind))}
            broken = {f.invariant.name: f.violations for f in await run_checks(conn)
                      if not f.holds}
        credited, cent = eur("10"), eur("0.01")
        refunds, disputes = taken.get("refund", 0), taken.get("dispute", 0)
        assert refunds <= min(max(refunded) * cent, credited)
        # Every event was applied: the refunds took their largest total, the dispute its
        # amount, up to what the funding credited.
        assert refunds + disputes == min(credited, (max(refunded) + disputed) * cent)
        assert broken == {}
    finally:
        await engine.dispose()


async def test_a_checkout_unknown_here_is_credited_from_metadata_this_deployment_sealed(
    world: World,
):
    ann = await world.member("ann")
    settings = world.settings.model_copy(update={"stripe_webhook_secret": WEBHOOK_SECRET})
    async with world.engine.begin() as conn:
        credited = await receive_event(conn, session_paid(
            "cs_9", "pi_9", 1041, member_id=ann, amount_micros=eur("10")), settings)
        bare = await receive_event(conn, session_paid("cs_x", "pi_x", 500), settings)
    assert (credited.state, bare.state) == ("done", "ignored")  # no metadata: not ours
    assert (await world.balances("ann"))["giving"] == eur("10")
    assert await world.violations() == {}


def made_up(session: dict, **metadata: str) -> dict:
    session["data"]["object"]["metadata"] = metadata
    return session


@pytest.mark.parametrize("case", ["another deployment", "no seal", "a seal for another amount",
                                  "unknown member", "a member id out of range"])
async def test_a_session_this_deployment_did_not_open_credits_nothing(world: World, case):
    """Any session of the Stripe account reaches every endpoint: one of another deployment,
    or with metadata made up, is recorded as ignored (Stripe gets its 200), nothing more."""
    ann = await world.member("ann")
    settings = world.settings.model_copy(update={"stripe_webhook_secret": WEBHOOK_SECRET})
    ten = eur("10")
    made = {
        "another deployment": session_paid("cs_o", "pi_o", 1041, member_id=ann,
                                           amount_micros=ten, seal_secret="whsec_theirs"),
        "no seal": made_up(session_paid("cs_o", "pi_o", 1041), flattr_member_id=str(ann),
                           flattr_amount_micros=str(ten)),
        "a seal for another amount": made_up(
            session_paid("cs_o", "pi_o", 1041), flattr_member_id=str(ann),
            flattr_amount_micros=str(ten), flattr_seal=seal(WEBHOOK_SECRET, ann, eur("1"))),
        "unknown member": session_paid("cs_o", "pi_o", 1041, member_id=ann + 1000,
                                       amount_micros=ten),
        "a member id out of range": session_paid("cs_o", "pi_o", 1041, member_id=2**70,
                                                 amount_micros=ten),
    }[case]
    async with world.engine.begin() as conn:
        received = await receive_event(conn, made, settings)
    assert (received.state, received.replayed) == ("ignored", False)
    assert (await world.balances("ann"))["giving"] == 0
    async with world.engine.connect() as conn:
        assert (await conn.execute(select(stripe_checkouts))).first() is None
        assert await conn.scalar(select(stripe_events.c.state)) == "ignored"
    assert await world.violations() == {}


async def test_a_paid_amount_other_than_the_checkouts_is_left_to_an_admin(world: World):
    ann = await world.member("ann")
    async with world.engine.begin() as conn:
        await open_checkout(conn, ann, "cs_2", "10", "0.41")
        received = await receive_event(conn, session_paid("cs_2", "pi_2", 1000), world.settings)
        other = await receive_event(conn, session_paid("cs_2", "pi_2", 1041, currency="usd"),
                                    world.settings)
    assert (received.state, other.state) == ("ignored", "ignored")
    assert (await world.balances("ann"))["giving"] == 0
    assert await world.violations() == {}


# --- Disputes closed: won brings the money back once, lost keeps it taken ------------------

CENT = eur("0.01")


@EXAMPLES
@given(disputed=st.integers(1, 1100), status=st.sampled_from(["won", "lost", "warning_closed"]),
       refunded=st.lists(st.integers(0, 1100), max_size=2), data=st.data())
def test_a_closed_dispute_in_any_order_leaves_what_its_outcome_says(
        databases, disputed, status, refunded, data):
    """A 10 EUR top-up, disputed, the dispute closed (told twice, as two events), maybe
    refunded too; all of it in any order, with replays and the month's giving (all of
    giving spent) anywhere in between."""
    events = [session_paid("cs_1", "pi_1", 1041), dispute_created("pi_1", disputed, "dp_1"),
              dispute_closed("pi_1", disputed, "dp_1", status),
              dispute_closed("pi_1", disputed, "dp_1", status),
              *(charge_refunded("pi_1", cents) for cents in refunded)]
    steps = data.draw(st.permutations([*range(len(events)), "spend"]))
    again = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=3))
    asyncio.run(close_dispute(databases.new_url(), events, [*steps, *again], status,
                              min(max(refunded, default=0) * CENT, eur("10")),
                              min(disputed * CENT, eur("10"))))


async def close_dispute(url: str, events: list[dict], steps: list, status: str,
                        refunded: int, disputed: int) -> None:
    settings = Settings(database_url=url)
    engine = create_engine(url)
    spent = 0
    try:
        ann = await ann_with_a_checkout(engine)
        for step in steps:
            async with engine.begin() as conn:
                if step != "spend":
                    await receive_event(conn, events[step], settings)
                    continue
                giving = await ledger.member_account(conn, ann, "giving")
                spent = await ledger.balance(conn, giving)
                if spent:
                    await ledger.record(conn, key="spent", kind="test.spend", entries=[
                        ledger.Posting(giving, -spent),
                        ledger.Posting(await ledger.system_account(conn, "fees"), spent)])
        async with engine.connect() as conn:
            giving = await ledger.balance(conn, await ledger.member_account(conn, ann, "giving"))
            owed = await owed_by(conn, ann)
            inside = -await ledger.balance(conn, await ledger.system_account(conn, "external"))
            disputes = (await conn.execute(select(
                funding_reversals.c.amount_micros, funding_reversals.c.reinstated_at).where(
                funding_reversals.c.kind == "dispute"))).all()
            states = set((await conn.execute(select(stripe_events.c.state))).scalars())
            broken = {f.invariant.name: f.violations for f in await run_checks(conn)
                      if not f.holds}
        credited = eur("10")
        if status == "lost":
            assert inside == credited - min(credited, refunded + disputed)
            assert all(reinstated is None for _, reinstated in disputes)
        else:  # the dispute's money came back; what Stripe refunded stays refunded
            assert inside == credited - refunded
            assert all(reinstated is not None for _, reinstated in disputes)
        assert len(disputes) <= 1
        assert giving - owed == inside - spent  # the member lost or got nothing else
        assert owed == 0 or giving == 0  # money back repaid the debt first
        assert "waiting" not in states
        assert broken == {}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("status", ["won", "lost"])
async def test_a_dispute_closed_before_it_was_told_opened_credits_nothing_never_taken(
    world: World, status,
):
    ann = await world.member("ann")
    async with world.engine.begin() as conn:
        await open_checkout(conn, ann, "cs_1", "10", "0.41")
        await receive_event(conn, session_paid("cs_1", "pi_1", 1041), world.settings)
    closed = dispute_closed("pi_1", 1041, "dp_1", status)
    async with world.engine.begin() as conn:
        first = await receive_event(conn, closed, world.settings)
    after_closed = await world.balances("ann")
    async with world.engine.begin() as conn:
        opened = await receive_event(conn, dispute_created("pi_1", 1041, "dp_1"),
                                     world.settings)
        replayed = await receive_event(conn, closed, world.settings)
    assert (first.state, opened.state, replayed.replayed) == ("done", "done", True)
    kept = eur("10") if status == "won" else 0
    assert after_closed["giving"] == kept
    assert (await world.balances("ann"))["giving"] == kept
    assert await world.system_balance("external") == -kept
    assert await world.violations() == {}


async def test_a_refund_the_open_dispute_left_no_room_for_is_taken_when_it_is_won(
    world: World,
):
    """Stripe refunded 5 after winning the dispute, told before the dispute's end: while
    the dispute held 6 of the 10, the refund could take only 4; its other 1 is taken when
    the 6 come back."""
    ann = await world.member("ann")
    async with world.engine.begin() as conn:
        await open_checkout(conn, ann, "cs_1", "10", "0.41")
        for made in (session_paid("cs_1", "pi_1", 1041), dispute_created("pi_1", 600, "dp_1"),
                     charge_refunded("pi_1", 500)):
            await receive_event(conn, made, world.settings)
    assert (await world.balances("ann"))["giving"] == eur("0")
    async with world.engine.begin() as conn:
        await receive_event(conn, dispute_closed("pi_1", 600, "dp_1", "won"), world.settings)
    assert (await world.balances("ann"))["giving"] == eur("5")
    assert await world.system_balance("external") == -eur("5")
    assert await world.violations() == {}


async def test_money_a_won_dispute_brought_back_is_proven_by_its_reversal(world: World):
    ann = await world.member("ann")
    async with world.engine.begin() as conn:
        await open_checkout(conn, ann, "cs_1", "10", "0.41")
        for made in (session_paid("cs_1", "pi_1", 1041), dispute_created("pi_1", 1041, "dp_1"),
                     dispute_closed("pi_1", 1041, "dp_1", "won")):
            await receive_event(conn, made, world.settings)
    assert await world.violations() == {}
    async with world.engine.begin() as conn:  # the reversal no longer says it came back
        await conn.execute(update(funding_reversals).values(reinstated_transaction_id=None,
                                                            reinstated_at=None))
    assert {"external_matches_records", "external_total"} <= set(await world.violations())
