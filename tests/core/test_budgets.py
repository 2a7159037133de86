"""A month is charged at the budget in force at its end, and only members who had one then
give an idle month to charity (issue 24, items 1 and 2)."""

import asyncio
from datetime import UTC, datetime

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from core import members
from core.db import create_engine
from core.money import parse_amount as eur
from core.schema import charges
from core.settings import Settings
from world import World


async def charge_of(world: World, handle: str, period: str):
    async with world.engine.connect() as conn:
        return (await conn.execute(
            select(charges.c.status, charges.c.budget_micros, charges.c.charge_micros)
            .where(charges.c.member_id == world.ids[handle], charges.c.period == period)
        )).first()


async def set_budget(world: World, handle: str, amount: str, at: datetime) -> None:
    async with world.engine.begin() as conn:
        await members.set_budget(conn, world.ids[handle], eur(amount), world.settings, now=at)


async def test_raising_the_budget_after_a_month_ended_does_not_charge_that_month_more(
    world: World,
):
    await world.member("ann", credit="60", budget="2")
    await world.flattr("ann", "https://a.example/", "2026-01")
    await set_budget(world, "ann", "50", datetime(2026, 2, 3, tzinfo=UTC))

    await world.settle("2026-01")

    assert tuple(await charge_of(world, "ann", "2026-01")) == ("funded", eur("2"), eur("2"))
    assert (await world.balances("ann"))["giving"] == eur("58")
    assert await world.violations() == {}


async def test_the_last_budget_set_before_the_end_of_the_month_counts(world: World):
    await world.member("bea", credit="60", budget="2")
    await set_budget(world, "bea", "9", datetime(2026, 1, 10, tzinfo=UTC))
    await set_budget(world, "bea", "4", datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    await set_budget(world, "bea", "30", datetime(2026, 2, 1, tzinfo=UTC))
    await world.flattr("bea", "https://b.example/", "2026-01")
    await world.flattr("bea", "https://b.example/", "2026-02")

    await world.settle("2026-01")
    await world.settle("2026-02")

    assert tuple(await charge_of(world, "bea", "2026-01")) == ("funded", eur("4"), eur("4"))
    assert tuple(await charge_of(world, "bea", "2026-02")) == ("funded", eur("30"), eur("30"))


async def test_a_month_before_the_first_budget_is_charged_at_that_first_budget(world: World):
    """Flattrs made before any budget was chosen are paid at the first one chosen, not at
    whatever the budget became later."""
    await world.member("cal", credit="60")
    await world.flattr("cal", "https://c.example/", "2026-01")
    await set_budget(world, "cal", "3", datetime(2026, 2, 2, tzinfo=UTC))
    await set_budget(world, "cal", "40", datetime(2026, 2, 3, tzinfo=UTC))

    await world.settle("2026-01")

    assert tuple(await charge_of(world, "cal", "2026-01")) == ("funded", eur("3"), eur("3"))


async def test_charity_takes_nothing_for_months_before_a_member_joined(engine, database_url):
    world = World(engine, Settings(database_url=database_url, idle_budget="charity"))
    today = datetime.now(UTC)
    await world.member("newcomer", credit="20", budget="7", joined=today)

    await world.settle("2026-08")
    await world.settle("2026-09")

    assert await world.system_balance("charity") == 0
    assert (await world.balances("newcomer"))["giving"] == eur("20")
    assert await world.violations() == {}


async def test_charity_takes_nothing_below_the_minimum_nor_before_a_budget_was_set(
    engine, database_url,
):
    world = World(engine, Settings(database_url=database_url, idle_budget="charity"))
    await world.member("poor", credit="1.5", budget="7")
    await world.member("late", credit="20")
    await set_budget(world, "late", "5", datetime(2026, 3, 1, tzinfo=UTC))
    await world.member("kind", credit="20", budget="6")

    await world.settle("2026-02")

    assert await world.system_balance("charity") == eur("6")
    assert (await world.balances("poor"))["giving"] == eur("1.5")
    assert (await world.balances("late"))["giving"] == eur("20")
    assert (await world.balances("kind"))["giving"] == eur("14")
    assert await world.violations() == {}


SET_TIMES = st.lists(
    st.tuples(st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 3, 31),
                           timezones=st.just(UTC)),
              st.integers(2, 40)),
    min_size=1, max_size=5,
)


def budget_in_force(history: list[tuple[datetime, int]], end: datetime) -> int:
    """The model: the last budget set before the end, else the first one ever set."""
    before = [amount for at, amount in history if at < end]
    if before:
        return before[-1]
    return min(history, key=lambda entry: entry[0])[1]


@given(history=SET_TIMES)
@hypothesis_settings(max_examples=20, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_history_of_budgets_charges_the_one_in_force(databases, history):
    history = sorted(history, key=lambda entry: entry[0])  # set one after the other

    url = databases.new_url()

    async def play() -> tuple[int, int]:
        engine = create_engine(url)
        try:
            world = World(engine, Settings(database_url=url))
            await world.member("gil", credit="100")
            for at, amount in history:
                await set_budget(world, "gil", str(amount), at)
            await world.flattr("gil", "https://g.example/", "2026-01")
            await world.settle("2026-01")
            status, budget, charged = await charge_of(world, "gil", "2026-01")
            assert status == "funded"
            return budget, charged
        finally:
            await engine.dispose()

    expected = eur(str(budget_in_force(history, datetime(2026, 2, 1, tzinfo=UTC))))
    assert asyncio.run(play()) == (expected, expected)
