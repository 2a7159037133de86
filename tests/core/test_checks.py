"""The invariants of `flattr check` hold wherever a settlement stops, not only at its end."""

from core import payouts
from core.periods import Period
from core.settings import Settings
from core.settlement import STAGES, settle_period
from world import World


class Stopped(Exception):
    """Raised after a stage has committed: the run stops there, as a killed one would."""


def stop(number: int, name: str) -> None:
    raise Stopped(name)


async def settle_stage_by_stage(world: World, period: str) -> list[str]:
    """Settle one stage a run, checking every invariant after each; the stages run."""
    run = []
    while True:
        try:
            result = await settle_period(world.engine, Period.parse(period), world.settings,
                                         on_stage=stop)
        except Stopped as stopped:
            run.append(str(stopped))
            assert await world.violations() == {}, f"after {stopped} of {period}"
            continue
        assert result.already_settled
        return run


async def test_every_invariant_holds_after_each_stage(engine, database_url):
    world = World(engine, Settings(database_url=database_url, redis_url=None,
                                   idle_budget="charity"))
    await world.member("ann", credit="80", budget="40")
    await world.member("olga", credit="4", budget="2")  # owns olga.example, gives
    await world.member("lena", credit="4", budget="2")  # owns later.example, gives from March
    await world.member("ida", credit="10", budget="3")  # never flattrs: charity
    await world.claim("olga", "olga.example")
    for thing in ("https://olga.example/a", "https://later.example/", "https://more.example/",
                  "https://nobody.example/"):
        await world.flattr("ann", thing, "2026-01")
    await world.flattr("olga", "https://ann.example/", "2026-01")
    assert len(await settle_stage_by_stage(world, "2026-01")) == len(STAGES)

    await world.claim("olga", "more.example")  # olga gave in January: released at once
    await world.claim("lena", "later.example")  # lena did not: still held
    await world.flattr("lena", "https://ann.example/", "2026-03")
    await world.flattr("ann", "https://olga.example/b", "2026-03")
    assert len(await settle_stage_by_stage(world, "2026-03")) == len(STAGES)  # releases to lena
    # July returns nobody's share
    assert len(await settle_stage_by_stage(world, "2026-07")) == len(STAGES)

    async with engine.begin() as conn:
        payout = await payouts.request_payout(conn, world.ids["olga"], world.settings)
        await payouts.resolve_payout(conn, payout.id, "paid")
    assert set(await world.share_states()) == {"paid", "released", "returned", "held"}
    assert await world.system_balance("charity") > 0
    assert await world.violations() == {}
