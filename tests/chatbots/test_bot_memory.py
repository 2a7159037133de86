"""The bots' memory: in a real Redis and in the in-process LRU, the same behaviour."""

import asyncio
import uuid

import pytest

from bots.memory import LruMemory, RedisMemory
from support import require_redis


@pytest.fixture(params=["lru", "redis"])
async def memory(request):
    if request.param == "lru":
        made = LruMemory(max_entries=100)
    else:
        made = RedisMemory(require_redis(), namespace=f"flattr-test-{uuid.uuid4().hex[:10]}")
    yield made
    await made.close()


async def test_a_value_is_kept_until_its_lifetime_ends(memory):
    assert await memory.get("author:-100/1") is None
    await memory.put("author:-100/1", "telegram:7", ttl_seconds=1)
    await memory.put("author:-100/2", "telegram:8", ttl_seconds=60)
    assert await memory.get("author:-100/1") == "telegram:7"
    await asyncio.sleep(1.2)
    assert await memory.get("author:-100/1") is None
    assert await memory.get("author:-100/2") == "telegram:8"


async def test_first_time_is_true_once_a_lifetime(memory):
    assert await memory.first_time("nudged:42", ttl_seconds=1)
    assert not await memory.first_time("nudged:42", ttl_seconds=1)
    assert await memory.first_time("nudged:43", ttl_seconds=1)
    await asyncio.sleep(1.2)
    assert await memory.first_time("nudged:42", ttl_seconds=1)


async def test_redis_keys_live_in_their_namespace_with_a_ttl():
    url = require_redis()
    one = RedisMemory(url, namespace=f"flattr-test-{uuid.uuid4().hex[:10]}")
    other = RedisMemory(url, namespace=f"flattr-test-{uuid.uuid4().hex[:10]}")
    try:
        await one.put("author:-100/1", "telegram:7", ttl_seconds=300)
        assert await other.get("author:-100/1") is None
        ttl = await one._redis.ttl(f"{one.namespace}:author:-100/1")
        assert 290 <= ttl <= 300
    finally:
        await one.close()
        await other.close()


async def test_the_lru_forgets_the_least_recently_used_first():
    memory = LruMemory(max_entries=3)
    for n in range(3):
        await memory.put(f"k{n}", str(n), ttl_seconds=60)
    assert await memory.get("k0") == "0"  # used: k1 is now the oldest
    await memory.put("k3", "3", ttl_seconds=60)
    assert len(memory) == 3
    assert await memory.get("k1") is None
    assert [await memory.get(k) for k in ("k0", "k2", "k3")] == ["0", "2", "3"]
    with pytest.raises(ValueError):
        LruMemory(max_entries=0)
