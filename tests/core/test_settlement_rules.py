"""Every money rule of DESIGN.md section 1, one scenario each, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import subscriptions
from core.errors import OwnThing
from core.money import parse_amount as eur
from core.periods import Period
from core.schema import charges, ledger_transactions, postings, shares
from core.settings import Settings
from core.settlement import STAGES
from world import World


async def test_split_pays_active_owners_and_holds_the_rest(world: World):
    await world.member("alice", credit="10", budget="5")
    await world.member("bob", credit="10", budget="2")
    await world.member("carol")  # owns a site, gives nothing: not an active giver
    await world.claim("bob", "bob.example")
    await world.claim("carol", "carol.example")
    await world.flattr("alice", "https://bob.example/post", "2026-01")
    await world.flattr("alice", "https://carol.example/post", "2026-01")
    await world.flattr("bob", "https://carol.example/other", "2026-01")

    await world.settle("2026-01")

    assert await world.balances("alice") == {
        "giving": eur("5"), "revenue": 0, "held_for_you": 0,
    }
    assert await world.balances("bob") == {
        "giving": eur("8"), "revenue": eur("2.25"), "held_for_you": 0,
    }
    assert await world.balances("carol") == {
        "giving": 0, "revenue": 0, "held_for_you": eur("2.25") + eur("1.8"),
    }
    assert await world.system_balance("fees") == eur("0.7")
    assert await world.system_balance("unclaimed") == eur("4.05")
    assert await world.violations() == {}


async def test_below_the_minimum_nothing_is_charged_and_flattrs_are_unfunded(world: World):
    await world.member("dave", credit="1.99", budget="5")
    await world.member("erin", credit="10", budget="2")
    await world.claim("dave", "dave.example")
    await world.flattr("dave", "https://erin.example/a", "2026-01")
    await world.flattr("erin", "https://dave.example/a", "2026-01")

    await world.settle("2026-01")

    async with world.engine.connect() as conn:
        status = await conn.scalar(
            select(charges.c.status).where(charges.c.member_id == world.ids["dave"])
        )
    assert status == "unfunded"
    assert (await world.balances("dave"))["giving"] == eur("1.99")
    # dave did not give, so he does not get: erin's share for him is held.
    assert await world.balances("dave") == {
        "giving": eur("1.99"), "revenue": 0, "held_for_you": eur("1.8"),
    }
    assert await world.violations() == {}


async def test_budget_above_balance_charges_the_balance(world: World):
    await world.member("fay", credit="3", budget="50")
    await world.flattr("fay", "https://nobody.example/", "2026-01")
    await world.settle("2026-01")
    assert (await world.balances("fay"))["giving"] == 0
    assert await world.system_balance("fees") == eur("0.3")
    assert await world.system_balance("unclaimed") == eur("2.7")


async def test_fee_rounds_down_and_the_first_flattrs_get_the_rest(world: World):
    await world.member("gus", credit="2.000003", budget="2.000003")
    first = await world.flattr("gus", "https://x.example/1", "2026-01",
                               at=datetime(2026, 11, 2, tzinfo=UTC))
    second = await world.flattr("gus", "https://x.example/2", "2026-01",
                                at=datetime(2026, 11, 3, tzinfo=UTC))
    await world.settle("2026-01")
    assert await world.system_balance("fees") == 200_000  # floor(200 000.3)
    async with world.engine.connect() as conn:
        amounts = dict(
            (await conn.execute(select(shares.c.flattr_id, shares.c.amount_micros))).all()
        )
    assert amounts == {first.flattr.id: 900_002, second.flattr.id: 900_001}


async def test_held_share_is_released_when_the_owner_becomes_an_active_giver(world: World):
    await world.member("alice", credit="20", budget="4")
    await world.member("carol", credit="10", budget="2")
    await world.claim("carol", "carol.example")
    await world.flattr("alice", "https://carol.example/", "2026-01")
    await world.settle("2026-01")  # carol gave nothing in January: held
    assert (await world.balances("carol"))["held_for_you"] == eur("3.6")

    await world.flattr("carol", "https://alice.example/", "2026-02")
    await world.settle("2026-02")  # carol is an active giver of February: released

    carol = await world.balances("carol")
    assert carol == {"giving": eur("8"), "revenue": eur("3.6"), "held_for_you": 0}
    assert await world.share_states() == {"released": eur("3.6"), "held": eur("1.8")}
    assert await world.violations() == {}


async def test_held_share_is_released_when_an_active_giver_verifies_a_claim(world: World):
    await world.member("alice", credit="20", budget="4")
    await world.member("carol", credit="10", budget="2")
    await world.flattr("alice", "https://carol.example/", "2026-01")
    await world.flattr("carol", "https://alice.example/", "2026-01")
    await world.settle("2026-01")  # nobody owns carol.example yet: held
    assert await world.share_states() == {"held": eur("3.6") + eur("1.8")}

    await world.claim("carol", "carol.example")

    assert (await world.balances("carol"))["revenue"] == eur("3.6")
    assert await world.share_states() == {"released": eur("3.6"), "held": eur("1.8")}
    assert await world.violations() == {}


async def test_share_still_held_after_the_window_goes_back_to_the_giver(world: World):
    await world.member("alice", credit="20", budget="4")
    await world.flattr("alice", "https://unclaimed.example/", "2026-01")
    await world.settle("2026-01")
    await world.settle("2026-06")  # five months later: still held
    assert (await world.balances("alice"))["giving"] == eur("16")

    await world.settle("2026-07")  # six months: returned
    assert (await world.balances("alice"))["giving"] == eur("16") + eur("3.6")
    assert await world.share_states() == {"returned": eur("3.6")}
    assert await world.system_balance("unclaimed") == 0
    assert await world.violations() == {}


@pytest.mark.parametrize(
    ("policy", "giving_after", "charity"), [("keep", "10", "0"), ("charity", "5", "5")]
)
async def test_a_month_without_flattrs(engine, database_url, policy, giving_after, charity):
    world = World(engine, Settings(database_url=database_url, idle_budget=policy))
    await world.member("ida", credit="10", budget="5")
    await world.settle("2026-01")
    assert (await world.balances("ida"))["giving"] == eur(giving_after)
    assert await world.system_balance("charity") == eur(charity)
    assert await world.violations() == {}


async def test_own_things_are_refused_then_left_out_of_the_split(world: World):
    await world.member("jan", credit="10", budget="4")
    await world.claim("jan", "jan.example")
    with pytest.raises(OwnThing):
        await world.flattr("jan", "https://jan.example/me", "2026-01")

    await world.flattr("jan", "https://kim.example/", "2026-01")
    await world.flattr("jan", "https://kim.example/later-mine", "2026-01")
    await world.member("kim")
    await world.claim("jan", "kim.example", "/later-mine")  # jan now owns one of them
    await world.settle("2026-01")

    async with world.engine.connect() as conn:
        count = await conn.scalar(select(charges.c.flattr_count))
        split = (await conn.execute(select(shares.c.amount_micros))).scalars().all()
    assert count == 1
    assert split == [eur("3.6")]
    assert await world.violations() == {}


async def test_chat_posts_belong_to_the_linked_author(world: World):
    await world.member("lea", credit="10", budget="2")
    await world.member("max", credit="10", budget="2")
    await world.link("max", "telegram:42")
    await world.flattr("lea", "telegram:-1001/7", "2026-01", author="telegram:42")
    await world.flattr("max", "https://lea.example/", "2026-01")
    await world.settle("2026-01")
    assert (await world.balances("max"))["revenue"] == eur("1.8")


async def test_subscriptions_add_a_flattr_to_each_month(world: World):
    await world.member("ned", credit="30", budget="3")
    async with world.engine.begin() as conn:
        await subscriptions.subscribe(
            conn, world.ids["ned"], "https://podcast.example/", 2,
            now=datetime(2026, 1, 10, tzinfo=UTC),
        )
    for period in ("2026-01", "2026-02", "2026-03"):
        await world.settle(period)
    assert (await world.balances("ned"))["giving"] == eur("24")
    assert await world.violations() == {}


async def test_settling_again_changes_nothing(world: World):
    await world.member("alice", credit="10", budget="5")
    await world.member("bob", credit="10", budget="2")
    await world.claim("bob", "bob.example")
    await world.flattr("alice", "https://bob.example/", "2026-01")
    await world.flattr("bob", "https://unclaimed.example/", "2026-01")
    first = await world.settle("2026-01")
    snapshot = await ledger_snapshot(world)

    again = await world.settle("2026-01")

    assert first.stages_run == len(STAGES) and again.already_settled
    assert await ledger_snapshot(world) == snapshot


async def test_a_period_that_has_not_ended_cannot_be_settled(world: World):
    from core.errors import PeriodClosed

    with pytest.raises(PeriodClosed):
        await world.settle(str(Period.current()))


async def test_a_month_is_settled_a_minute_after_its_end_not_before(world: World):
    """A click stamped just before the end may still be on its way to the database."""
    from core.errors import PeriodClosed

    await world.member("ann", credit="10", budget="2")
    await world.flattr("ann", "https://late.example/", "2026-01")
    end = Period.parse("2026-01").ends_at
    with pytest.raises(PeriodClosed, match="from 2026-02-01 00:01 UTC"):
        await world.settle("2026-01", now=end + timedelta(seconds=59))
    assert (await world.balances("ann"))["giving"] == eur("10")
    settled = await world.settle("2026-01", now=end + timedelta(minutes=1))
    assert settled.stages_run == len(STAGES)
    assert (await world.balances("ann"))["giving"] == eur("8")


async def ledger_snapshot(world: World):
    async with world.engine.connect() as conn:
        rows = await conn.execute(
            select(ledger_transactions.c.key, postings.c.account_id, postings.c.amount_micros)
            .join(postings, postings.c.transaction_id == ledger_transactions.c.id)
            .order_by(ledger_transactions.c.key, postings.c.account_id)
        )
        return rows.all()
