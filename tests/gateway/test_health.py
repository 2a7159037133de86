"""/healthz says the process is alive; /readyz whether it can serve (database, Redis, schema)."""

import socket
import time

from sqlalchemy import text

from core.migrate import head_revisions
from core.settings import Settings
from gateway.app import create_app

ANSWER_WITHIN_SECONDS = 3.0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_ready_when_the_database_redis_and_schema_are(client, limits_store):
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200, body
    assert body["status"] == "ready" and body["problems"] == []
    assert body["database"] == "ok" and body["migrations"] == "ok"
    if limits_store is None:
        assert body["redis"] == "not configured"
    else:
        assert body["redis"].startswith("ok ("), body
    alive = await client.get("/healthz")
    assert alive.status == 200 and (await alive.json())["status"] == "ok"
    assert "X-Request-Id" in ready.headers and "X-Request-Id" in alive.headers


async def test_not_ready_while_the_schema_is_behind_the_code(make_client, engine):
    client = await make_client()
    [head] = head_revisions()
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503, body
    assert body["status"] == "not ready" and body["database"] == "ok"
    assert body["migrations"].startswith("not at head"), body
    assert "0001" in body["migrations"] and head in body["migrations"], body
    assert body["problems"] == [f"migrations: {body['migrations']}"]
    assert (await client.get("/healthz")).status == 200  # alive: a restart would not help

    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :head"),
                           {"head": head})
    assert (await client.get("/readyz")).status == 200


async def test_not_ready_but_alive_while_the_database_is_away(aiohttp_client, gateway_settings):
    settings = Settings(database_url=f"postgresql://postgres@127.0.0.1:{closed_port()}/none",
                        redis_url=None)
    client = await aiohttp_client(create_app(settings, gateway_settings))
    started = time.monotonic()
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503, body
    assert body["database"].startswith("unavailable: "), body
    assert body["migrations"] == "unknown"  # not asked of a database that is away
    assert body["problems"] == [f"database: {body['database']}"]
    alive = await client.get("/healthz")
    state = await alive.json()
    assert alive.status == 200 and state["status"] == "degraded", state
    assert state["database"].startswith("unavailable: ")
    assert time.monotonic() - started < ANSWER_WITHIN_SECONDS


async def test_not_ready_while_the_configured_redis_is_away(make_client):
    client = await make_client(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503, body
    assert body["redis"].startswith("unavailable: ") and body["database"] == "ok", body
    assert body["problems"] == [f"redis: {body['redis']}"]
    alive = await client.get("/healthz")
    state = await alive.json()
    # Limits are counted in-process meanwhile: alive and serving.
    assert alive.status == 200 and state["status"] == "ok", state
    assert state["redis"].endswith("(limits in-process)"), state
