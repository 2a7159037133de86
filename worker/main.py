"""The long-running worker: a round (worker.cycle.run_due) every `interval` seconds until
SIGTERM or SIGINT, which let the piece of work in hand finish before it exits; and, when
asked, its own /metrics (the outbox's depth, its rounds and failures)."""

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from core import outbox
from core.clock import utc_now
from core.db import READ_ONLY
from core.outbox_metrics import render_outbox_depth
from core.settings import Settings
from worker.cycle import run_due
from worker.done import log

DEPTH_TIMEOUT_SECONDS = 5


@dataclass
class Counters:
    rounds: int = 0
    failures: int = 0  # pieces of work that failed
    last_round_at: float = 0.0  # Unix time the last round ended

    def render(self) -> str:
        return "\n".join([
            "# HELP flattr_worker_rounds_total Rounds of the worker.",
            "# TYPE flattr_worker_rounds_total counter",
            f"flattr_worker_rounds_total {self.rounds}",
            "# HELP flattr_worker_failures_total Pieces of work that failed.",
            "# TYPE flattr_worker_failures_total counter",
            f"flattr_worker_failures_total {self.failures}",
            "# HELP flattr_worker_last_round_timestamp_seconds When the last round ended.",
            "# TYPE flattr_worker_last_round_timestamp_seconds gauge",
            f"flattr_worker_last_round_timestamp_seconds {self.last_round_at:.3f}",
        ]) + "\n"


async def metrics_text(engine: AsyncEngine, counters: Counters) -> str:
    try:
        async with asyncio.timeout(DEPTH_TIMEOUT_SECONDS):
            async with engine.connect() as conn:
                await conn.execution_options(**READ_ONLY)
                depth = await outbox.depth(conn)
    except Exception as error:  # a scrape reports the database away, it does not fail
        return counters.render() + f"# flattr_outbox_messages unavailable: {type(error).__name__}\n"
    return counters.render() + render_outbox_depth(depth)


@asynccontextmanager
async def metrics_server(engine: AsyncEngine, counters: Counters, host: str,
                         port: int) -> AsyncIterator[int]:
    """Serve GET /metrics on host:port while inside; yields the port (0: one the system
    chose)."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text=await metrics_text(engine, counters),
                            content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield runner.addresses[0][1]  # the port bound, when 0 was asked
    finally:
        await runner.cleanup()


async def run_forever(engine: AsyncEngine, settings: Settings, *, interval: float,
                      metrics_host: str = "127.0.0.1", metrics_port: int | None = None) -> None:
    """Rounds until SIGTERM or SIGINT; each signal lets the piece in hand finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    counters = Counters()
    try:
        async with _maybe_metrics(engine, counters, metrics_host, metrics_port):
            log.info("worker started: a round every %g s", interval)
            while not stop.is_set():
                done = await run_due(engine, settings, should_stop=stop.is_set)
                counters.rounds += 1
                counters.failures += sum(1 for d in done if d.failed)
                counters.last_round_at = utc_now().timestamp()
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
        log.info("worker stopped")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


@asynccontextmanager
async def _maybe_metrics(engine: AsyncEngine, counters: Counters, host: str,
                         port: int | None) -> AsyncIterator[None]:
    if port is None:
        yield
        return
    async with metrics_server(engine, counters, host, port) as bound:
        log.info("metrics on http://%s:%d/metrics", host, bound)
        yield
