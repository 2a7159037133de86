"""The order the Telegram bot keeps among updates it handles at once (no network)."""

import asyncio

from bots.telegram.ordering import KeyOrder


async def test_shared_holders_run_together_after_the_exclusive_one_before_them():
    order, events = KeyOrder(), []
    post_seen = asyncio.Event()

    async def post() -> None:
        async with order.hold(exclusive=("user:1", "post:p")):
            events.append("post starts")
            await post_seen.wait()
            events.append("post ends")

    async def reaction(user: int) -> None:
        async with order.hold(exclusive=(f"user:{user}",), shared=("post:p",)):
            events.append(f"reaction {user} starts")
            await asyncio.sleep(0.05)
            events.append(f"reaction {user} ends")

    tasks = [asyncio.create_task(post())] + [asyncio.create_task(reaction(u)) for u in (2, 3)]
    await asyncio.sleep(0.05)
    assert events == ["post starts"]
    post_seen.set()
    await asyncio.gather(*tasks)
    assert events[:2] == ["post starts", "post ends"]
    assert events[2:4] == ["reaction 2 starts", "reaction 3 starts"]  # side by side
    assert len(order) == 0


async def test_one_user_s_updates_run_one_after_the_other_in_arrival_order():
    order, events = KeyOrder(), []

    async def update(name: str, seconds: float) -> None:
        async with order.hold(exclusive=("user:1",), shared=("post:p",)):
            events.append(f"{name} starts")
            await asyncio.sleep(seconds)
            events.append(f"{name} ends")

    await asyncio.gather(update("add", 0.05), update("remove", 0.0), update("add again", 0.0))
    assert events == ["add starts", "add ends", "remove starts", "remove ends",
                      "add again starts", "add again ends"]


async def test_a_cancelled_update_does_not_hold_up_the_next():
    order = KeyOrder()
    started = asyncio.Event()

    async def stuck() -> None:
        async with order.hold(exclusive=("user:1",)):
            started.set()
            await asyncio.sleep(3600)

    async def next_one() -> str:
        async with order.hold(exclusive=("user:1",)):
            return "ran"

    blocked = asyncio.create_task(stuck())
    await started.wait()
    waiting = asyncio.create_task(next_one())
    await asyncio.sleep(0.02)
    assert not waiting.done()
    blocked.cancel()
    assert await asyncio.wait_for(waiting, 1) == "ran"
    assert len(order) == 0
