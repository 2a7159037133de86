"""`run_due`: months settled when they may be, in order, each once; a run left half done
resumed; one worker settling at a time."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.periods import Period
from core.schema import charges, ledger_transactions, outbox, settlements
from core.settlement import settle_period
from core.settlement.run import SETTLE_AFTER
from worker.cycle import run_due
from worker.settling import months_due, settling_lock

DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)  # November 2026 ends


class Stop(Exception):
    pass


async def a_month(world, period: str = "2026-11") -> None:
    await world.member("ann", credit="10", budget="5")
    await world.member("bob", credit="3", budget="2")
    await world.claim("bob", "bob.example")
    await world.flattr("ann", "https://bob.example/post", period)
    await world.flattr("ann", "https://unclaimed.example/", period)
    await world.flattr("bob", "https://elsewhere.example/", period)


async def runs(engine) -> dict[str, tuple[int, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(settlements.c.period, settlements.c.stage, settlements.c.status))
        return {period: (stage, status) for period, stage, status in rows}


async def count(engine, table, *where) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(table).where(*where))


def settled(done) -> list[str]:
    return [d.counts["period"] for d in done if d.work == "settle" and not d.failed
            and not d.counts.get("skipped")]


async def test_a_month_is_settled_only_once_it_may_be(world, engine, settings):
    await a_month(world)
    assert await run_due(engine, settings, DECEMBER - timedelta(hours=1)) == []
    assert await run_due(engine, settings, DECEMBER + SETTLE_AFTER - timedelta(seconds=1)) == []
    assert await runs(engine) == {}

    done = await run_due(engine, settings, DECEMBER + SETTLE_AFTER)
    assert settled(done) == ["2026-11"]
    assert done[0].counts["stages_run"] == 6 and done[0].counts["givers"] == 2
    assert done[0].counts["charged_micros"] == 7_000_000
    assert done[0].counts["summaries"] == 2
    assert done[0].line.startswith("settled 2026-11: 6 stages, 2 givers (0 unfunded), €7.00")
    assert await runs(engine) == {"2026-11": (6, "settled")}
    assert await world.violations() == {}


async def test_a_worker_started_late_settles_every_month_in_order_and_nothing_twice(
        world, engine, settings):
    await a_month(world, "2026-09")
    await world.flattr("ann", "https://bob.example/later", "2026-11")
    late = datetime(2027, 1, 20, 12, tzinfo=UTC)

    done = await run_due(engine, settings, late)
    # October, with nothing in it, is settled too: months are settled in order.
    assert settled(done) == ["2026-09", "2026-10", "2026-11", "2026-12"]
    assert [d.counts["stages_run"] for d in done] == [6, 6, 6, 6]
    assert {p: status for p, (_, status) in (await runs(engine)).items()} == dict.fromkeys(
        ["2026-09", "2026-10", "2026-11", "2026-12"], "settled")
    transactions = await count(engine, ledger_transactions)
    summaries = await count(engine, outbox, outbox.c.kind == "summary")
    assert summaries == 2 + 2  # ann and bob in September, and in November (held for bob)

    assert await run_due(engine, settings, late) == []
    assert await run_due(engine, settings, late + timedelta(days=3)) == []
    assert await count(engine, ledger_transactions) == transactions
    assert await count(engine, outbox, outbox.c.kind == "summary") == summaries
    assert await count(engine, charges, charges.c.period == "2026-09") == 2
    assert await world.violations() == {}


async def test_nothing_is_due_without_flattrs_and_the_next_month_waits_for_its_end(
        world, engine, settings):
    await world.member("ann", credit="10", budget="5")
    assert await run_due(engine, settings, DECEMBER + timedelta(days=40)) == []
    await world.flattr("ann", "https://a.example/", "2026-11")
    assert settled(await run_due(engine, settings, DECEMBER + timedelta(minutes=5))) == [
        "2026-11"]
    async with engine.connect() as conn:
        assert await months_due(conn, DECEMBER + timedelta(days=30)) == []
        assert await months_due(conn, datetime(2027, 1, 1, 0, 1, tzinfo=UTC)) == [
            Period(2026, 12)]


async def test_a_run_left_settling_is_resumed_first(world, engine, settings):
    await a_month(world)

    def crash_after_stage(number: int, _name: str) -> None:
        if number == 3:
            raise Stop

    with pytest.raises(Stop):
        await settle_period(engine, Period(2026, 11), settings, now=DECEMBER + SETTLE_AFTER,
                            on_stage=crash_after_stage)
    assert await runs(engine) == {"2026-11": (3, "settling")}

    done = await run_due(engine, settings, datetime(2027, 1, 2, tzinfo=UTC))
    assert settled(done) == ["2026-11", "2026-12"]
    assert done[0].counts["stages_run"] == 3  # the three stages left
    assert await runs(engine) == {"2026-11": (6, "settled"), "2026-12": (6, "settled")}
    assert await count(engine, outbox, outbox.c.kind == "summary") == 2
    assert await world.violations() == {}


async def test_a_worker_holding_the_settling_lock_keeps_the_others_off(
        world, engine, settings):
    await a_month(world)
    async with settling_lock(engine) as held:
        assert held
        done = await run_due(engine, settings, DECEMBER + SETTLE_AFTER)
        assert [(d.work, d.counts) for d in done] == [("settle", {"skipped": True})]
        assert await runs(engine) == {}
    assert settled(await run_due(engine, settings, DECEMBER + SETTLE_AFTER)) == ["2026-11"]


async def test_the_instant_must_carry_its_time_zone(engine, settings):
    with pytest.raises(Exception, match="timezone-aware"):
        await run_due(engine, settings, datetime(2026, 12, 1))
