"""What keeps one member from flooding the gateway, and reactions of one member to one post
in the order they were made.

`PerUser` is a token bucket a user: `burst` events at once, then one every `refill_seconds`;
the buckets of users not seen for the longest are forgotten first. `KeyedLocks` hands out a
lock per key, made when first wanted and dropped when no one holds or waits for it: an
addition and a removal of the same reaction are handled one after the other, in order.
"""

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

MAX_USERS = 100_000


class PerUser:
    def __init__(self, burst: int, refill_seconds: float, max_users: int = MAX_USERS) -> None:
        if burst < 1:
            raise ValueError("a bucket holds at least one event")
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.max_users = max_users
        self._buckets: OrderedDict[int, tuple[float, float]] = OrderedDict()

    def allow(self, user_id: int) -> bool:
        """True when the user may have one more event now (and it is counted)."""
        now = time.monotonic()
        tokens, at = self._buckets.pop(user_id, (float(self.burst), now))
        if self.refill_seconds > 0:
            tokens = min(float(self.burst), tokens + (now - at) / self.refill_seconds)
        else:
            tokens = float(self.burst)
        allowed = tokens >= 1.0
        self._buckets[user_id] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_users:
            self._buckets.popitem(last=False)
        return allowed


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
