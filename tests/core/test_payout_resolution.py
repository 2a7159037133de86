"""A payout is resolved once: paid or failed, never both (issue 24, item 3)."""

import asyncio

import pytest

from core import payouts
from core.errors import InvalidState
from core.money import parse_amount as eur
from world import World


async def creator_with_a_payout(world: World) -> int:
    await world.member("gia", credit="20", budget="20")
    await world.member("hal", credit="2", budget="2")
    await world.claim("hal", "hal.example")
    await world.flattr("gia", "https://hal.example/", "2026-01")
    await world.flattr("hal", "https://else.example/", "2026-01")
    await world.settle("2026-01")
    async with world.engine.begin() as conn:
        payout = await payouts.request_payout(conn, world.ids["hal"], world.settings)
    assert payout.amount_micros == eur("18")
    return payout.id


async def test_two_admins_resolving_at_once_give_one_outcome(world: World):
    payout_id = await creator_with_a_payout(world)
    first_has_resolved = asyncio.Event()

    async def resolve(outcome: str, hold: bool):
        async with world.engine.begin() as conn:
            if not hold:
                await first_has_resolved.wait()
            resolved = await payouts.resolve_payout(conn, payout_id, outcome)
            if hold:
                first_has_resolved.set()
                await asyncio.sleep(0.3)  # the other admin's transaction starts meanwhile
            return resolved

    paid, failed = await asyncio.gather(
        resolve("paid", hold=True), resolve("failed", hold=False), return_exceptions=True
    )

    assert paid.status == "paid"
    assert isinstance(failed, InvalidState)
    assert (await world.balances("hal"))["revenue"] == 0
    assert await world.system_balance("payouts") == 0
    assert await world.system_balance("external") == -eur("22") + eur("18")
    assert await world.violations() == {}


async def test_resolving_again_the_same_way_is_a_no_op(world: World):
    payout_id = await creator_with_a_payout(world)
    async with world.engine.begin() as conn:
        await payouts.resolve_payout(conn, payout_id, "failed")
    async with world.engine.begin() as conn:
        assert (await payouts.resolve_payout(conn, payout_id, "failed")).status == "failed"
        with pytest.raises(InvalidState):
            await payouts.resolve_payout(conn, payout_id, "paid")
    assert (await world.balances("hal"))["revenue"] == eur("18")
    assert await world.violations() == {}
