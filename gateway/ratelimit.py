"""Rate limits per token and per client address, in fixed one-minute windows.

With Redis the counters are shared by every gateway process. When Redis does not answer,
the limiter counts in-process and tries Redis again after a pause, so flattrs are still
accepted while it is down and shared limits come back with it.
"""

import logging
import time
from dataclasses import dataclass, field

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import keys
from gateway.errors import ApiError
from gateway.principal import Principal

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60
RETRY_REDIS_AFTER_SECONDS = 1.0


@dataclass
class MemoryCounters:
    counts: dict[str, int] = field(default_factory=dict)
    window: int = 0

    def add(self, key: str, window: int) -> int:
        if window != self.window:
            self.counts.clear()
            self.window = window
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]


@dataclass
class RateLimiter:
    per_token: int
    per_address: int
    redis: Redis | None = None
    memory: MemoryCounters = field(default_factory=MemoryCounters)
    redis_down_until: float = 0.0

    @property
    def using_redis(self) -> bool:
        return self.redis is not None and time.monotonic() >= self.redis_down_until

    async def check(self, request: web.Request, principal: Principal | None) -> None:
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        reset = (window + 1) * WINDOW_SECONDS
        checks = [(f"addr:{request.remote}", self.per_address)]
        if principal is not None:
            checks.append((principal.rate_key, self.per_token))
        counts = await self._add([key for key, _ in checks], window)
        remaining = min(limit - count for (_, limit), count in zip(checks, counts, strict=True))
        limit = checks[-1][1]
        request[keys.rate_limit_key] = (limit, max(remaining, 0), reset)
        if remaining < 0:
            retry_after = max(1, int(reset - now))
            raise ApiError("rate_limited", f"too many requests: try again in {retry_after} s",
                           {"Retry-After": str(retry_after), **headers(request)})

    async def _add(self, keys: list[str], window: int) -> list[int]:
        if self.using_redis:
            try:
                pipe = self.redis.pipeline(transaction=False)
                for key in keys:
                    name = f"flattr:rl:{window}:{key}"
                    pipe.incr(name)
                    pipe.expire(name, WINDOW_SECONDS * 2)
                results = await pipe.execute()
                return [int(results[i * 2]) for i in range(len(keys))]
            except (RedisError, OSError) as error:
                log.warning("rate limits fall back to in-process counting: %s", error)
                self.redis_down_until = time.monotonic() + RETRY_REDIS_AFTER_SECONDS
        return [self.memory.add(key, window) for key in keys]


def headers(request: web.Request) -> dict[str, str]:
    found = request.get(keys.rate_limit_key)
    if found is None:
        return {}
    limit, remaining, reset = found
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }
