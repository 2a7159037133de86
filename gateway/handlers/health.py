"""Health, metrics and the OpenAPI document."""

import time

from aiohttp import web
from sqlalchemy import text

from gateway import keys
from gateway.json import dumps
from gateway.openapi import openapi_document


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
    return web.Response(text=request.app[keys.metrics_key].render(),
                        content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=dumps(openapi_document(request.app)),
                        content_type="application/json")
