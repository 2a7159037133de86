"""The bot's background loops (delivery, owed work) outlive a fault of their own, and one
that ends anyway stops the bot loudly instead of leaving it half alive."""

import asyncio
import logging

from aiohttp import web

from bots.client import GatewayClient, Retrying
from bots.pending import Pending
from bots.telegram.delivery import Deliverer
from bots.telegram.run import watched


async def test_the_delivery_loop_outlives_an_answer_it_cannot_read(aiohttp_server, telegram,
                                                                   caplog):
    leases = []

    async def lease(_request: web.Request) -> web.Response:
        leases.append(1)  # the first answer lacks its messages: a KeyError in the client
        return web.json_response({"nothing": []} if len(leases) == 1 else {"messages": []})

    server = web.Application()
    server.router.add_post("/api/v1/bot/outbox/lease", lease)
    outbox = await aiohttp_server(server)
    async with GatewayClient(str(outbox.make_url("/")), "token",
                             retrying=Retrying(attempts=1)) as gateway:
        deliverer = Deliverer(telegram.app.bot, gateway, "https://x", wait_seconds=0,
                              retry_seconds=0.05)
        loop = asyncio.create_task(deliverer.run_forever())
        await asyncio.sleep(0.5)
        assert not loop.done() and len(leases) >= 2
        loop.cancel()
    assert "delivery round failed" in caplog.text
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


async def test_owed_work_that_breaks_is_logged_and_the_rest_still_runs(caplog):
    pending = Pending(first_wait_seconds=0.01)
    done = []

    async def broken() -> None:
        raise RuntimeError("a bug")

    async def fine() -> None:
        done.append("fine")

    pending.add("a", broken)
    pending.add("b", fine)
    loop = asyncio.create_task(pending.run_forever())
    await asyncio.sleep(0.3)
    assert not loop.done() and done == ["fine"] and len(pending) == 0
    loop.cancel()
    assert "RuntimeError: a bug" in caplog.text


async def test_a_loop_that_ends_stops_the_bot(caplog):
    stop = asyncio.Event()

    async def dies() -> None:
        raise RuntimeError("gone")

    async def waits() -> None:
        await asyncio.sleep(3600)

    task = watched(asyncio.create_task(dies(), name="telegram delivery"), stop)
    await asyncio.wait_for(stop.wait(), 2)
    assert task.done() and "telegram delivery ended" in caplog.text
    assert "RuntimeError: gone" in caplog.text
    quiet = asyncio.Event()
    cancelled = watched(asyncio.create_task(waits()), quiet)
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    await asyncio.sleep(0)
    assert not quiet.is_set()  # cancelled at the bot's stop: nothing to say
