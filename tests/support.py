"""Helpers shared by the tests (not fixtures): finding services, waiting for a condition."""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import pytest
import redis as sync_redis

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def unavailable(reason: str) -> None:
    """Skip, except in CI where a missing service is a broken set-up."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a skipped storage test is a failure)")
    pytest.skip(reason)


def redis_url_for_tests() -> str | None:
    url = os.environ.get("FLATTR_TEST_REDIS_URL", LOCAL_REDIS)
    try:
        sync_redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return url
    except sync_redis.RedisError:
        return None


def require_redis() -> str:
    url = redis_url_for_tests()
    if url is None:
        unavailable("no Redis for the tests: set FLATTR_TEST_REDIS_URL or start one on "
                    "127.0.0.1:6379")
    return url


async def wait_until(condition: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.05)
    return await condition()
