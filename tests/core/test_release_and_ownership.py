"""Who owns a thing, and when held shares follow its owner (issue 24, items 5, 7, 9, 13)."""

import contextlib

from sqlalchemy import select

from core import members, things
from core.money import parse_amount as eur
from core.periods import Period
from core.schema import shares
from core.settings import Settings
from core.settlement import settle_period
from core.statements import statement_of
from world import World


class StopAfterSplit(Exception):
    pass


async def owner_handle(world: World, key: str) -> str | None:
    async with world.engine.connect() as conn:
        found = await things.thing_by_key(conn, key)
    return found.owner_handle if found else None


async def test_a_claim_owns_whole_path_segments(world: World):
    await world.member("ann")
    await world.member("bob", credit="10", budget="2")
    await world.claim("ann", "site.example", "/blog")
    for path in ("/blog", "/blog/x", "/blogger/x", "/blogroll"):
        await world.flattr("bob", f"https://site.example{path}", "2026-01")
    await world.claim("ann", "other.example", "/blog")  # recomputed on a known host
    await world.flattr("bob", "https://other.example/blogroll", "2026-01")

    owners = {path: await owner_handle(world, f"https://site.example{path}")
              for path in ("/blog", "/blog/x", "/blogger/x", "/blogroll")}
    assert owners == {"/blog": "ann", "/blog/x": "ann", "/blogger/x": None, "/blogroll": None}
    assert await owner_handle(world, "https://other.example/blogroll") is None


async def test_a_claim_during_a_settlement_releases_nothing_of_the_month_being_settled(
    world: World,
):
    await world.member("carol", credit="10", budget="2")  # gives in January only
    await world.member("dan", credit="10", budget="2")
    await world.flattr("carol", "https://x.example/", "2026-01")
    await world.flattr("dan", "https://y.example/", "2026-01")
    await world.settle("2026-01")
    await world.flattr("dan", "https://carol.example/post", "2026-02")

    def stop(number: int, name: str) -> None:
        if number == 2:
            raise StopAfterSplit

    with contextlib.suppress(StopAfterSplit):
        await settle_period(world.engine, Period.parse("2026-02"), world.settings,
                            on_stage=stop)
    await world.claim("carol", "carol.example")  # February is half settled
    assert (await world.balances("carol"))["revenue"] == 0

    await world.settle("2026-02")
    assert await world.balances("carol") == {
        "giving": eur("8"), "revenue": 0, "held_for_you": eur("1.8"),
    }
    assert await world.violations() == {}


async def test_money_released_by_a_claim_is_in_that_month_statement(world: World):
    await world.member("eve", credit="10", budget="2")
    await world.member("fin", credit="10", budget="2")
    await world.flattr("eve", "https://fin.example/", "2026-01")
    await world.flattr("fin", "https://z.example/", "2026-01")
    await world.settle("2026-01")

    await world.claim("fin", "fin.example")

    async with world.engine.connect() as conn:
        statement = await statement_of(conn, world.ids["fin"], Period.current())
    assert statement["received_micros"] == eur("1.8")
    assert statement["received_released_micros"] == eur("1.8")
    assert await world.violations() == {}


async def test_linking_a_chat_identity_releases_what_is_held_for_its_posts(world: World):
    await world.member("lea", credit="10", budget="2")
    await world.member("max", credit="10", budget="2")
    await world.flattr("lea", "telegram:-1001/7", "2026-01", author="telegram:42")
    await world.flattr("max", "https://w.example/", "2026-01")
    await world.settle("2026-01")
    assert (await world.balances("max"))["revenue"] == 0

    await world.link("max", "telegram:42")

    assert await world.balances("max") == {
        "giving": eur("8"), "revenue": eur("1.8"), "held_for_you": 0,
    }
    assert await world.share_states() == {"released": eur("1.8"), "held": eur("1.8")}
    assert await world.violations() == {}


async def test_held_for_you_leaves_out_what_goes_back_to_the_member_as_giver(world: World):
    await world.member("jan", credit="10", budget="4")
    await world.flattr("jan", "https://kim.example/a", "2026-01")
    await world.flattr("jan", "https://lou.example/b", "2026-01")
    await world.settle("2026-01")

    await world.claim("jan", "kim.example")  # jan now owns a page he flattred himself

    assert (await world.balances("jan"))["held_for_you"] == 0
    async with world.engine.connect() as conn:
        states = (await conn.execute(select(shares.c.state))).scalars().all()
    assert states == ["held", "held"]


async def test_a_bot_cannot_make_a_chat_identity_the_owner_of_a_web_page(world: World):
    await world.member("ola", credit="10", budget="2")
    await world.member("pat")
    await world.member("quin")
    await world.claim("quin", "quin.example")
    await world.flattr("ola", "https://free.example/", "2026-01", author="telegram:77")
    await world.flattr("ola", "https://quin.example/", "2026-01", author="telegram:77")
    await world.link("pat", "telegram:77")

    assert await owner_handle(world, "https://free.example/") is None
    assert await owner_handle(world, "https://quin.example/") == "quin"
    async with world.engine.begin() as conn:
        [linked] = await members.identities_of(conn, world.ids["pat"])
        await members.unlink_identity(conn, world.ids["pat"], linked["id"])
    assert await owner_handle(world, "https://quin.example/") == "quin"


async def test_a_subscription_cancelled_after_the_month_ended_keeps_its_flattr(
    engine, database_url,
):
    from datetime import UTC, datetime

    from core import subscriptions

    world = World(engine, Settings(database_url=database_url))
    await world.member("rae", credit="30", budget="3")
    await world.member("sol", credit="30", budget="3")
    async with world.engine.begin() as conn:
        kept = await subscriptions.subscribe(conn, world.ids["rae"], "https://pod.example/", 3,
                                             now=datetime(2026, 1, 10, tzinfo=UTC))
        dropped = await subscriptions.subscribe(conn, world.ids["sol"], "https://pod.example/",
                                                3, now=datetime(2026, 1, 10, tzinfo=UTC))
    await world.settle("2026-01")
    async with world.engine.begin() as conn:
        # rae cancels once February is over, before it is settled; sol during February
        await subscriptions.cancel(conn, world.ids["rae"], kept.id,
                                   now=datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC))
        await subscriptions.cancel(conn, world.ids["sol"], dropped.id,
                                   now=datetime(2026, 2, 15, tzinfo=UTC))
    await world.settle("2026-02")
    await world.settle("2026-03")

    assert (await world.balances("rae"))["giving"] == eur("24")  # January and February
    assert (await world.balances("sol"))["giving"] == eur("27")  # January only
    assert await world.violations() == {}
