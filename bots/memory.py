"""What a bot remembers between events: short strings under keys, each with a lifetime.

Telegram's reaction updates do not say who wrote the post, so the bot remembers the author
of each message it sees; a bot also remembers whom it told something already (one nudge, one
invitation a month). With `FLATTR_REDIS_URL` this lives in Redis, shared by every process of
the bot and kept across restarts, each key with a TTL; without it, in a bounded in-process
LRU that forgets the oldest keys first.
"""

import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as aioredis

DEFAULT_LRU_ENTRIES = 200_000


class Memory(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str, ttl_seconds: int) -> None: ...

    async def first_time(self, key: str, ttl_seconds: int) -> bool:
        """True once per key and lifetime: the caller may act (tell someone something)."""
        ...

    async def close(self) -> None: ...


class LruMemory:
    """In-process: at most `max_entries` keys, the least recently used forgotten first."""

    def __init__(self, max_entries: int = DEFAULT_LRU_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("an LRU memory holds at least one entry")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> str | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[1] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[0]

    async def put(self, key: str, value: str, ttl_seconds: int) -> None:
        self._entries[key] = (value, time.monotonic() + ttl_seconds)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def first_time(self, key: str, ttl_seconds: int) -> bool:
        if await self.get(key) is not None:
            return False
        await self.put(key, "1", ttl_seconds)
        return True

    async def close(self) -> None:
        self._entries.clear()


class RedisMemory:
    """In Redis, every key under `namespace:` and with its TTL."""

    def __init__(self, url: str, namespace: str = "flattr-bot") -> None:
        self.namespace = namespace
        self._redis = aioredis.Redis.from_url(url, decode_responses=True,
                                              socket_connect_timeout=5, socket_timeout=5)

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    async def get(self, key: str) -> str | None:
        return await self._redis.get(self._key(key))

    async def put(self, key: str, value: str, ttl_seconds: int) -> None:
        await self._redis.set(self._key(key), value, ex=ttl_seconds)

    async def first_time(self, key: str, ttl_seconds: int) -> bool:
        return bool(await self._redis.set(self._key(key), "1", ex=ttl_seconds, nx=True))

    async def close(self) -> None:
        await self._redis.aclose()


def memory_for(redis_url: str | None, namespace: str = "flattr-bot") -> Memory:
    return RedisMemory(redis_url, namespace) if redis_url else LruMemory()
