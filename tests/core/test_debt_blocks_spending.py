"""While a member owes money (a refund or a dispute left a debt) nothing of theirs is spent:
no subscription, no subscribed flattr at settlement, no payout; revenue moved to giving
repays the debt first. On SQLite and PostgreSQL."""

import asyncio
import itertools
import os
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core import flattrs, funding, ledger, members, payouts, subscriptions
from core.checks import run_checks
from core.db import create_engine
from core.errors import BelowPayoutThreshold, InDebt
from core.money import parse_amount as eur
from core.schema import flattrs as flattrs_table
from core.schema import fundings
from core.schema import payouts as payouts_table
from core.schema import subscriptions as subscriptions_table
from core.settings import Settings
from world import World

EXAMPLES = hypothesis_settings(
    max_examples=int(os.environ.get("FLATTR_PROPERTY_EXAMPLES", "25")),
    deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_keys = itertools.count(1)
cents = st.integers(1, 3_000).map(lambda n: n * eur("0.01"))


async def given_away(conn, member_id: int, funded: int) -> int:
    """The member funded, and the month gave it all away (to `fees`, in short): its
    funding's id."""
    recorded = await funding.credit(conn, member_id, funded, idempotency_key=f"f{next(_keys)}")
    await ledger.record(conn, key=f"spend{next(_keys)}", kind="test.spend", entries=[
        ledger.Posting(await ledger.member_account(conn, member_id, "giving"), -funded),
        ledger.Posting(await ledger.system_account(conn, "fees"), funded)])
    return await conn.scalar(select(fundings.c.id).where(
        fundings.c.transaction_id == recorded.transaction_id))


async def in_debt(conn, member_id: int, funded: int, taken: int, earned: int) -> None:
    """Given away what they funded, then `taken` of it refunded (a debt), and `earned` in
    revenue from a fan's flattrs (in short, from the fan's giving)."""
    funding_id = await given_away(conn, member_id, funded)
    fan = (await members.create_member(conn, f"fan{next(_keys)}")).id
    await funding.credit(conn, fan, earned, idempotency_key=f"f{next(_keys)}")
    await ledger.record(conn, key=f"earn{next(_keys)}", kind="test.earn", entries=[
        ledger.Posting(await ledger.member_account(conn, fan, "giving"), -earned),
        ledger.Posting(await ledger.member_account(conn, member_id, "revenue"), earned)])
    await funding.reverse(conn, funding_id, taken, kind="refund", reference=f"r{next(_keys)}")


@EXAMPLES
@given(funded=cents, taken=cents, earned=cents, data=st.data())
def test_revenue_repays_a_debt_first_and_a_debt_blocks_spending(
        databases, funded, taken, earned, data):
    earned = max(earned, funded)  # enough that a transfer can repay it all, sometimes
    moved = data.draw(st.integers(1, earned), label="moved")
    asyncio.run(transfer_then_spend(databases.new_url(), funded, min(taken, funded), earned,
                                    moved))


async def transfer_then_spend(url: str, funded: int, owed: int, earned: int, moved: int):
    settings = Settings(database_url=url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            ann = (await members.create_member(conn, "ann")).id
            await in_debt(conn, ann, funded, owed, earned)
            assert await funding.owed_by(conn, ann) == owed
            made = await funding.transfer_revenue_to_giving(conn, ann, moved,
                                                            idempotency_key="move")
        repaid = min(owed, moved)
        expected = {"giving": moved - repaid, "revenue": earned - moved, "debt": repaid - owed}
        assert await balances(engine, ann) == expected
        async with engine.begin() as conn:  # the same transfer again, the debt changed since
            again = await funding.transfer_revenue_to_giving(conn, ann, moved,
                                                             idempotency_key="move")
        assert (again.transaction_id, again.created) == (made.transaction_id, False)
        assert await balances(engine, ann) == expected

        still_owed = owed - repaid
        attempts = {
            "subscribe": lambda conn: subscriptions.subscribe(conn, ann, "https://a.example/",
                                                              3),
            "payout": lambda conn: payouts.request_payout(conn, ann, settings),
            "flattr": lambda conn: flattrs.flattr(conn, ann, "https://b.example/"),
        }
        for name, attempt in attempts.items():
            async with engine.begin() as conn:
                if still_owed:
                    with pytest.raises(InDebt):
                        await attempt(conn)
                elif name == "payout" and earned - moved < settings.payout_threshold:
                    with pytest.raises(BelowPayoutThreshold):
                        await attempt(conn)
                else:
                    await attempt(conn)
        async with engine.connect() as conn:
            made_rows = [await conn.scalar(select(func.count()).select_from(table))
                         for table in (subscriptions_table, payouts_table, flattrs_table)]
            broken = {f.invariant.name: f.violations for f in await run_checks(conn)
                      if not f.holds}
        if still_owed:
            assert made_rows == [0, 0, 0]  # refused, nothing made
            assert await balances(engine, ann) == expected
        assert broken == {}
    finally:
        await engine.dispose()


async def balances(engine, member_id: int) -> dict[str, int]:
    async with engine.connect() as conn:
        return {"giving": await ledger.balance(
                    conn, await ledger.member_account(conn, member_id, "giving")),
                "revenue": await ledger.balance(
                    conn, await ledger.member_account(conn, member_id, "revenue")),
                "debt": -await funding.owed_by(conn, member_id)}


async def test_a_member_in_debt_gets_no_subscribed_flattr_at_settlement(world: World):
    """Both subscribed in January while they owed nothing; Ann's card payment was refunded
    after her money was given away, and January is settled while she owes it."""
    january = datetime(2026, 1, 5, tzinfo=UTC)
    ann = await world.member("ann", credit="10", budget="10")
    bob = await world.member("bob", credit="10", budget="10")
    await world.member("cat")
    await world.claim("cat", "cat.example")
    async with world.engine.begin() as conn:
        for member_id in (ann, bob):
            await subscriptions.subscribe(conn, member_id, "https://cat.example/", 3,
                                          now=january)
        funding_id = await given_away(conn, ann, eur("5"))
        await ledger.record(conn, key="rest-given", kind="test.spend", entries=[
            ledger.Posting(await ledger.member_account(conn, ann, "giving"), -eur("10")),
            ledger.Posting(await ledger.system_account(conn, "fees"), eur("10"))])
        await funding.reverse(conn, funding_id, eur("5"), kind="refund", reference="re_1")
    await world.settle("2026-01")

    async with world.engine.connect() as conn:
        flattred = set((await conn.execute(select(flattrs_table.c.member_id).where(
            flattrs_table.c.period == "2026-01"))).scalars())
        assert await funding.owed_by(conn, ann) == eur("5")
    assert flattred == {bob}
    cat = await world.balances("cat")
    assert cat["revenue"] + cat["held_for_you"] > 0  # Bob's month was split
    assert await world.violations() == {}
