"""Health, metrics and the OpenAPI document."""

import asyncio
import time

from aiohttp import web
from sqlalchemy import text

from core import outbox
from core.db import READ_ONLY
from gateway import keys
from gateway.json import dumps
from gateway.openapi import openapi_document

DEPTH_TIMEOUT_SECONDS = 2.0


async def healthz(request: web.Request) -> web.Response:
    state = {"database": "ok", "redis": "not configured"}
    try:
        async with request.app[keys.engine_key].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:  # any failure means "not ok", reported, never raised
        state["database"] = f"unavailable: {error.__class__.__name__}"
    redis = request.app[keys.redis_key]
    if redis is not None:
        try:
            started = time.perf_counter()
            await redis.ping()
            state["redis"] = f"ok ({(time.perf_counter() - started) * 1000:.1f} ms)"
        except Exception as error:
            state["redis"] = f"unavailable: {error.__class__.__name__} (limits in-process)"
    healthy = state["database"] == "ok"
    return web.Response(status=200 if healthy else 503, body=dumps(
        {"status": "ok" if healthy else "degraded", **state}
    ), content_type="application/json")


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
