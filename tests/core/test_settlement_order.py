"""Months are settled in order, and any month can be settled to the end (issue 24, item 6)."""

import pytest
from sqlalchemy import select

from core.errors import PeriodOutOfOrder
from core.money import parse_amount as eur
from core.schema import settlements
from core.settlement import STAGES
from world import World


async def test_a_month_waits_for_an_earlier_month_with_flattrs(world: World):
    await world.member("ann", credit="20", budget="2")
    await world.flattr("ann", "https://a.example/", "2026-01")
    await world.flattr("ann", "https://a.example/", "2026-02")

    with pytest.raises(PeriodOutOfOrder, match="2026-01"):
        await world.settle("2026-02")
    assert (await world.balances("ann"))["giving"] == eur("20")

    await world.settle("2026-01")
    await world.settle("2026-02")
    assert (await world.balances("ann"))["giving"] == eur("16")
    assert await world.violations() == {}


async def test_a_month_before_a_settled_one_is_refused(world: World):
    await world.member("bob", credit="20", budget="2")
    await world.flattr("bob", "https://b.example/", "2026-03")
    await world.settle("2026-03")

    with pytest.raises(PeriodOutOfOrder, match="2026-03 is settled"):
        await world.settle("2026-02")
    assert (await world.settle("2026-03")).already_settled


async def test_months_without_flattrs_between_do_not_block(world: World):
    await world.member("cy", credit="20", budget="2")
    await world.flattr("cy", "https://c.example/", "2026-01")
    await world.flattr("cy", "https://c.example/", "2026-05")
    await world.settle("2026-01")
    assert (await world.settle("2026-05")).stages_run == len(STAGES)


async def test_the_first_month_there_is_settles_to_the_end(world: World):
    """2000-01 once left its run stuck in `settling`: no month was six months before it."""
    result = await world.settle("2000-01")
    assert result.stages_run == len(STAGES)
    async with world.engine.connect() as conn:
        status = await conn.scalar(
            select(settlements.c.status).where(settlements.c.period == "2000-01")
        )
    assert status == "settled"
    assert await world.violations() == {}
