"""Clicks cannot slip into a month that settlement has begun (issue 24, item 4).

The click path's batch takes its month's flattrs lock, which the split of that month holds
exclusively, then reads `settlements` afresh: a click waiting on a split finds its month
closed afterwards, and one that came first is counted by the split. A click of the next
month does not wait.
"""

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from core import flattrs, members
from core.errors import PeriodClosed
from core.flattr_batch import FlattrRequest, flattr_many
from core.locks import lock_period_flattrs
from core.periods import Period
from core.schema import flattrs as flattrs_table
from core.thing_keys import parse_thing_key

LAST_SECOND = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
JANUARY = Period(2026, 1)
START = text("""
INSERT INTO settlements (period, stage, status, fee_bps, minimum_budget_micros, hold_months,
                         idle_budget, started_at)
VALUES ('2026-01', 0, 'settling', 1000, 2000000, 6, 'keep', CURRENT_TIMESTAMP)
""")


async def a_member(engine) -> int:
    async with engine.begin() as conn:
        return (await members.create_member(conn, "ann")).id


async def flattrs_of_january(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(
            select(func.count()).where(flattrs_table.c.period == "2026-01")
        )


def a_click(member_id: int, path: str = "/") -> FlattrRequest:
    return FlattrRequest(member_id, parse_thing_key(f"https://a.example{path}"), "extension")


async def click_batch(engine, member_id: int, now: datetime = LAST_SECOND):
    async with engine.connect() as conn:
        return await flattr_many(conn, [a_click(member_id)], now)


@contextlib.asynccontextmanager
async def splitting_january(engine):
    """A connection as settlement's split holds it: January begun, its flattrs locked."""
    async with engine.connect() as split:
        await split.begin()
        await split.execute(START)
        await lock_period_flattrs(split, JANUARY, exclusive=True)
        yield split


@pytest.mark.postgres_only
async def test_a_batch_waits_for_the_split_then_finds_the_month_closed(engine):
    ann = await a_member(engine)
    async with splitting_january(engine) as split:
        click = asyncio.create_task(click_batch(engine, ann))
        await asyncio.sleep(0.3)
        assert not click.done(), "the click went through while the month was being split"
        await split.commit()
    [outcome] = await asyncio.wait_for(click, 10)
    assert isinstance(outcome, PeriodClosed)
    assert await flattrs_of_january(engine) == 0


async def test_a_click_into_a_month_being_settled_is_refused(engine, backend):
    ann = await a_member(engine)
    async with engine.begin() as conn:
        await conn.execute(START)
    [outcome] = await click_batch(engine, ann)
    assert isinstance(outcome, PeriodClosed)
    async with engine.begin() as conn:
        with pytest.raises(PeriodClosed):
            await flattrs.flattr(conn, ann, "https://a.example/b", now=LAST_SECOND)
    assert await flattrs_of_january(engine) == 0


async def test_a_batch_of_an_open_month_still_flattrs(engine, backend):
    ann = await a_member(engine)
    async with engine.connect() as conn:
        outcomes = await flattr_many(conn, [a_click(ann, "/1"), a_click(ann, "/2")], LAST_SECOND)
    assert [o.created for o in outcomes] == [True, True]
    assert await flattrs_of_january(engine) == 2


@pytest.mark.postgres_only
async def test_a_single_flattr_waits_for_the_split_too(engine):
    ann = await a_member(engine)

    async def single_click():
        async with engine.begin() as conn:
            return await flattrs.flattr(conn, ann, "https://a.example/c", now=LAST_SECOND)

    async with engine.connect() as split:
        await split.begin()
        await lock_period_flattrs(split, JANUARY, exclusive=True)
        click = asyncio.create_task(single_click())
        await asyncio.sleep(0.3)
        assert not click.done()
        await split.execute(START)
        await split.commit()
    with pytest.raises(PeriodClosed):
        await asyncio.wait_for(click, 10)
    assert await flattrs_of_january(engine) == 0


@pytest.mark.postgres_only
async def test_clicks_of_the_next_month_do_not_wait_for_a_split(engine):
    ann = await a_member(engine)
    async with splitting_january(engine) as split:
        [outcome] = await asyncio.wait_for(
            click_batch(engine, ann, datetime(2026, 2, 1, 0, 2, tzinfo=UTC)), 2
        )
        assert outcome.created
        async with engine.begin() as conn:
            single = await asyncio.wait_for(flattrs.flattr(
                conn, ann, "https://a.example/d", now=datetime(2026, 2, 1, 0, 2, tzinfo=UTC)
            ), 2)
        assert single.created
        await split.rollback()


async def test_a_month_before_a_settled_month_takes_no_flattr(engine, backend):
    """Months are settled in order: a flattr added to a month that was skipped, once a
    later month is settled, could never be settled and would block every settlement."""
    ann = await a_member(engine)
    async with engine.begin() as conn:
        await conn.execute(text(START.text.replace("2026-01", "2026-03")))
    [outcome] = await click_batch(engine, ann)
    assert isinstance(outcome, PeriodClosed)
    async with engine.begin() as conn:
        with pytest.raises(PeriodClosed, match="2026-03 is settled already"):
            await flattrs.flattr(conn, ann, "https://a.example/e", period=JANUARY,
                                 now=datetime(2026, 4, 2, tzinfo=UTC))
    assert await flattrs_of_january(engine) == 0
