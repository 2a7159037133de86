"""The bots' owed work: tried again while the gateway is away, one key at a time, the
latest intent for a key winning over what was owed for it."""

import asyncio

from bots.client import GatewayUnavailable
from bots.owed import now_or_owed
from bots.pending import Pending

KEY = "discord:1 discord:2/3/4"


async def test_owed_work_in_flight_is_waited_for_by_newer_work_on_its_key():
    pending = Pending()
    done: list[str] = []
    gateway_up = False

    async def flattr() -> None:
        if not gateway_up:
            raise GatewayUnavailable("down")
        await asyncio.sleep(0.2)  # the answer is slow
        done.append("flattr")

    async def take_back() -> str:
        done.append("take-back")
        return "taken back"

    async with pending.locks.hold(KEY):
        assert await now_or_owed(pending, KEY, flattr) is None
    gateway_up = True
    sending = asyncio.create_task(pending.run_once())
    await asyncio.sleep(0.05)  # the owed flattr is on its way
    async with pending.locks.hold(KEY):
        assert await now_or_owed(pending, KEY, take_back) == "taken back"
    assert await sending
    assert done == ["flattr", "take-back"]
    assert len(pending) == 0 and len(pending.locks) == 0


async def test_newer_work_on_an_owed_key_replaces_it_when_it_is_owed_too():
    pending = Pending()
    tried: list[str] = []

    def away(name: str):
        async def work() -> None:
            tried.append(name)
            raise GatewayUnavailable("down")
        return work

    async with pending.locks.hold(KEY):
        await now_or_owed(pending, KEY, away("flattr"))
        await now_or_owed(pending, KEY, away("take-back"))
    assert len(pending) == 1
    assert not await pending.run_once()
    assert tried == ["flattr", "take-back", "take-back"]
