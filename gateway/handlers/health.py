"""Liveness, readiness, metrics and the OpenAPI document."""

import asyncio
import time

from aiohttp import web
from sqlalchemy import text

from core import migrate, outbox
from core.db import READ_ONLY
from gateway import keys
from gateway.json import dumps
from gateway.openapi import openapi_document

DEPTH_TIMEOUT_SECONDS = 2.0
CHECK_TIMEOUT_SECONDS = 2.0


async def healthz(request: web.Request) -> web.Response:
    """Liveness: 200 whenever this process answers (a load balancer or an orchestrator must
    not restart a gateway because its database is away); the body tells what it can reach."""
    database, redis = await asyncio.gather(
        _database_state(request.app),
        _redis_state(request.app, unavailable_suffix=" (limits in-process)"))
    state = {"database": database, "redis": redis}
    healthy = state["database"] == "ok"
    return web.Response(body=dumps({"status": "ok" if healthy else "degraded", **state}),
                        content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when this process can serve (the database and Redis, if configured,
    answer and the schema is at the migrations' head), else 503 with what is wrong."""
    app = request.app
    database, redis = await asyncio.gather(_database_state(app), _redis_state(app))
    migrations = await _migrations_state(app) if database == "ok" else "unknown"
    state = {"database": database, "redis": redis, "migrations": migrations}
    problems = [f"{part}: {value}" for part, value in state.items()
                if value != "not configured" and value.split(" ")[0] != "ok"
                and (part, value) != ("migrations", "unknown")]
    if app[keys.stopping_key].is_set():
        problems.append("shutting down")
    return web.Response(status=503 if problems else 200, body=dumps(
        {"status": "not ready" if problems else "ready", **state, "problems": problems}
    ), content_type="application/json")


async def _database_state(app: web.Application) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async with app[keys.engine_key].connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as error:  # any failure means "not ok", reported, never raised
        return f"unavailable: {error.__class__.__name__}"
    return "ok"


async def _redis_state(app: web.Application, unavailable_suffix: str = "") -> str:
    redis = app[keys.redis_key]
    if redis is None:
        return "not configured"
    try:
        started = time.perf_counter()
        await redis.ping()
    except Exception as error:
        return f"unavailable: {error.__class__.__name__}{unavailable_suffix}"
    return f"ok ({(time.perf_counter() - started) * 1000:.1f} ms)"


async def _migrations_state(app: web.Application) -> str:
    heads = app[keys.migration_heads_key]
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async with app[keys.engine_key].connect() as conn:
                await conn.execution_options(**READ_ONLY)
                current = await migrate.current_revisions(conn)
    except Exception as error:
        return f"unknown: {error.__class__.__name__}"
    if current == heads:
        return "ok"
    return (f"not at head: the database is at {', '.join(sorted(current)) or 'no revision'}, "
            f"the code at {', '.join(sorted(heads))} (run flattr db upgrade)")


async def metrics(request: web.Request) -> web.Response:
    counters = request.app[keys.metrics_key]
    depth, error = None, None
    try:
        async with asyncio.timeout(DEPTH_TIMEOUT_SECONDS):
            async with request.app[keys.engine_key].connect() as conn:
                await conn.execution_options(**READ_ONLY)
                depth = await outbox.depth(conn)
    except Exception as failure:  # a scrape reports the database away, it does not fail
        counters.outbox_scrape_errors += 1
        error = failure.__class__.__name__
    return web.Response(text=counters.render() + counters.render_outbox(depth, error),
                        content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=dumps(openapi_document(request.app)),
                        content_type="application/json")
