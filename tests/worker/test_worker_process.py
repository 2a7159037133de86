"""The long-running worker: it settles by the clock, shows the outbox's depth on its own
/metrics port, and exits 0 on SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from sqlalchemy import select

from core.clock import utc_now
from core.periods import Period
from core.schema import settlements
from services import free_port
from support import wait_until
from worker.main import Counters, metrics_server

FLATTR = str(Path(sys.executable).parent / "flattr")


def parse_metrics(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in
            (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))}


async def scrape(port: int) -> dict[str, float]:
    async with (aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/metrics") as response):
        assert response.status == 200
        assert response.content_type == "text/plain"
        return parse_metrics(await response.text())


async def a_month_ago(world) -> str:
    """ann flattred bob's post last month; both get their summary on Telegram."""
    period = str(Period.of(utc_now()).previous())
    await world.member("ann", credit="10", budget="5")
    await world.member("bob", credit="3", budget="2")
    await world.claim("bob", "bob.example")
    await world.link("ann", "telegram:1")
    await world.link("bob", "telegram:2")
    await world.flattr("ann", "https://bob.example/post", period)
    return period


async def test_the_metrics_port_shows_the_outboxs_depth(world, engine, settings):
    counters = Counters(rounds=3, failures=1)
    async with metrics_server(engine, counters, "127.0.0.1", 0) as port:
        before = await scrape(port)
        assert before['flattr_outbox_messages{state="pending"}'] == 0
        assert before["flattr_outbox_oldest_pending_seconds"] == 0
        assert before["flattr_worker_rounds_total"] == 3
        assert before["flattr_worker_failures_total"] == 1
        period = await a_month_ago(world)
        await world.settle(period)
        after = await scrape(port)
    assert after['flattr_outbox_messages{state="pending"}'] == 2
    assert after['flattr_outbox_messages{state="dead"}'] == 0
    assert after["flattr_outbox_oldest_pending_seconds"] >= 0


async def test_the_long_running_worker_settles_by_the_clock_and_stops_on_sigterm(
        world, engine, database_url):
    period = await a_month_ago(world)
    port = free_port()
    env = {**os.environ, "FLATTR_DATABASE_URL": database_url}
    with subprocess.Popen([FLATTR, "worker", "--interval", "1", "--metrics-port", str(port)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as child:
        try:
            async def settled() -> bool:
                async with engine.connect() as conn:
                    return await conn.scalar(select(settlements.c.status).where(
                        settlements.c.period == period)) == "settled"

            assert await wait_until(settled, 60), child.stderr.read() if child.poll() else ""

            async def scraped() -> bool:
                try:
                    metrics = await scrape(port)
                except aiohttp.ClientConnectionError:
                    return False
                return metrics.get("flattr_worker_rounds_total", 0) >= 2

            assert await wait_until(scraped, 30)
            metrics = await scrape(port)
            assert metrics['flattr_outbox_messages{state="pending"}'] == 2
            child.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert child.wait(timeout=30) == 0
            assert time.monotonic() - started < 10
        finally:
            if child.poll() is None:
                child.kill()
        log = child.stderr.read()
    assert f"settled {period}: 6 stages, 1 giver" in log
    assert "worker stopped" in log
