"""Rate limits per token and per client address, in fixed one-minute windows.

Requests are counted in-process, where the decision is made without a round trip. With
Redis, a background task adds this process's new counts to shared counters every
SYNC_SECONDS and learns the totals of all gateway processes, so the limit is shared
(to within one sync). When Redis does not answer the counts stay in-process and are
pushed once it is back.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from gateway import keys
from gateway.errors import ApiError
from gateway.principal import Principal

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60
SYNC_SECONDS = 0.25

# One round trip a sync, whatever the number of tokens: this process's new counts go into
# the window's hash and every process's totals come back, each as one string. A line is
# "<what is limited> <count>"; no name holds a newline (they come from HTTP headers).
SYNC_SCRIPT = """
local totals = {}
for name, count in string.gmatch(ARGV[1], "([^\\n]+) (%d+)\\n") do
    totals[#totals + 1] = redis.call("HINCRBY", KEYS[1], name, count)
end
redis.call("EXPIRE", KEYS[1], ARGV[2])
return table.concat(totals, " ")
"""


@dataclass
class RateLimiter:
    per_token: int
    per_address: int
    redis: Redis | None = None
    prefix: str = "flattr:rl"  # a Redis hash a window, <prefix>:<window>: what is limited → count
    window: int = 0
    shared: Counter = field(default_factory=Counter)  # totals Redis reported
    unsent: Counter = field(default_factory=Counter)  # counted here since the last sync
    sending: Counter = field(default_factory=Counter)  # on their way to Redis right now
    redis_ok: bool = True
    script: AsyncScript | None = None

    def _roll(self, window: int) -> None:
        if window != self.window:
            self.window = window
            self.shared.clear()
            self.unsent.clear()
            self.sending = Counter()

    def check(self, request: web.Request, principal: Principal | None) -> None:
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        self._roll(window)
        reset = (window + 1) * WINDOW_SECONDS
        remaining = self._count(f"addr:{request.remote}", self.per_address)
        limit = self.per_address
        if principal is not None:
            remaining = min(remaining, self._count(principal.rate_key, self.per_token))
            limit = self.per_token
        request[keys.rate_limit_key] = (limit, max(remaining, 0), reset)
        if remaining < 0:
            retry_after = max(1, int(reset - now))
            raise ApiError("rate_limited", f"too many requests: try again in {retry_after} s",
                           {"Retry-After": str(retry_after), **headers(request)})

    def _count(self, key: str, limit: int) -> int:
        """Count one request against `key`; how many more its limit allows."""
        unsent = self.unsent[key] = self.unsent.get(key, 0) + 1
        return limit - (self.shared.get(key, 0) + self.sending.get(key, 0) + unsent)

    async def sync(self) -> None:
        """Push this process's new counts to Redis and take back the shared totals."""
        if self.redis is None or not self.unsent:
            return
        window, sent = self.window, self.unsent
        self.unsent, self.sending = Counter(), sent
        try:
            if self.script is None:
                self.script = self.redis.register_script(SYNC_SCRIPT)
            reply = await self.script(
                keys=[f"{self.prefix}:{window}"],
                args=["".join(f"{key} {count}\n" for key, count in sent.items()),
                      WINDOW_SECONDS * 2],
            )
            totals = reply.split()
        except (RedisError, OSError) as error:
            if self.redis_ok:
                log.warning("rate limits count in-process while Redis is away: %s", error)
            self.redis_ok = False
            if window == self.window:
                self.sending = Counter()
                self.unsent.update(sent)  # keep them for when Redis is back
            return
        if not self.redis_ok:
            log.warning("Redis is back: rate limits are shared again")
        self.redis_ok = True
        if window == self.window:
            self.sending = Counter()
            for key, total in zip(sent, totals, strict=True):
                self.shared[key] = int(total)  # includes what was just sent

    async def run_sync(self) -> None:
        task = asyncio.current_task()
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            with contextlib.suppress(Exception):
                await self.sync()
            if task is not None and task.cancelling():  # redis-py may swallow a cancel
                raise asyncio.CancelledError


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
