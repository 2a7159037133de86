"""Rate limits per client address and per token, failed sign-ins and sign-ups, in fixed
windows.

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

from core.errors import InvalidHandle
from core.members import handle_key
from gateway import keys
from gateway.errors import ApiError
from gateway.principal import Principal

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60
SYNC_SECONDS = 0.25

# One round trip a sync, whatever the number of tokens: this process's new counts go into
# the window's hash and every process's totals come back, each as one string. A line is
# "<what is limited> <count>"; no name holds a newline (they come from HTTP headers). A
# count may be negative: a sign-in that succeeded gives its attempt back.
SYNC_SCRIPT = """
local totals = {}
for name, count in string.gmatch(ARGV[1], "([^\\n]+) (-?%d+)\\n") do
    totals[#totals + 1] = redis.call("HINCRBY", KEYS[1], name, count)
end
redis.call("EXPIRE", KEYS[1], ARGV[2])
return table.concat(totals, " ")
"""


@dataclass
class WindowCounts:
    """How often each name was counted in the current window, by every gateway process."""

    window_seconds: int = WINDOW_SECONDS
    redis: Redis | None = None
    prefix: str = "flattr:rl"  # a Redis hash a window, <prefix>:<window>: name → count
    window: int = 0
    shared: Counter = field(default_factory=Counter)  # totals Redis reported
    unsent: Counter = field(default_factory=Counter)  # counted here since the last sync
    sending: Counter = field(default_factory=Counter)  # on their way to Redis right now
    redis_ok: bool = True
    script: AsyncScript | None = None

    def roll(self, now: float) -> float:
        """Start a new window when `now` is past this one; when the window of `now` ends."""
        window = int(now // self.window_seconds)
        if window != self.window:
            self.window = window
            self.shared.clear()
            self.unsent.clear()
            self.sending = Counter()
        return (window + 1) * self.window_seconds

    def add(self, name: str, count: int = 1) -> int:
        """Count `name` (in the window of the last roll); its total now."""
        unsent = self.unsent[name] = self.unsent.get(name, 0) + count
        return self.shared.get(name, 0) + self.sending.get(name, 0) + unsent

    def total(self, name: str) -> int:
        return self.shared.get(name, 0) + self.sending.get(name, 0) + self.unsent.get(name, 0)

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
                args=["".join(f"{name} {count}\n" for name, count in sent.items()),
                      self.window_seconds * 2],
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
            for name, total in zip(sent, totals, strict=True):
                self.shared[name] = int(total)  # includes what was just sent

    async def run_sync(self) -> None:
        task = asyncio.current_task()
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            with contextlib.suppress(Exception):
                await self.sync()
            if task is not None and task.cancelling():  # redis-py may swallow a cancel
                raise asyncio.CancelledError


def _limited(request: web.Request, seconds_left: float, what: str) -> ApiError:
    retry_after = max(1, int(seconds_left))
    return ApiError("rate_limited", f"too many {what}: try again in {retry_after} s",
                    {"Retry-After": str(retry_after), **headers(request)})


@dataclass
class RateLimiter:
    """Requests a minute: every request against its address, then against its token.

    A bot's token is the operator's, and one bot delivers for every member: its requests
    count against the token's own, higher limit (`per_bot`) instead of its address, which
    gets its count back once the token proved valid. A bot acting for a chat user is also
    held to the per-token limit of that user.
    """

    per_token: int
    per_address: int
    counts: WindowCounts
    per_bot: int = 120_000

    def check_address(self, request: web.Request) -> None:
        """Counted before authentication, so that invalid tokens are limited as well."""
        now = time.time()
        reset = self.counts.roll(now)
        remaining = self.per_address - self.counts.add(self._address(request))
        request[keys.rate_limit_key] = (self.per_address, max(remaining, 0), reset)
        if remaining < 0:
            raise _limited(request, reset - now, "requests")

    def check_token(self, request: web.Request, principal: Principal) -> None:
        """After check_address: the token's own limit (the headers show the tighter one)."""
        limit, remaining, reset = request[keys.rate_limit_key]
        if principal.is_bot:
            self.counts.add(self._address(request), -1)
            limit, remaining = self.per_bot, self.per_bot - self.counts.add(principal.bot_key)
        if not principal.is_bot or principal.acting_for:
            limit = self.per_token
            remaining = min(remaining, self.per_token - self.counts.add(principal.rate_key))
        request[keys.rate_limit_key] = (limit, max(remaining, 0), reset)
        if remaining < 0:
            raise _limited(request, reset - time.time(), "requests")

    @staticmethod
    def _address(request: web.Request) -> str:
        return f"addr:{request.remote}"


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt as counted: in which window, against which names."""

    window: int
    names: tuple[str, ...]


@dataclass
class SignInLimiter:
    """Password guessing and hashing, in a longer window: failed sign-ins per handle from
    one address, per address and per handle from all addresses; sign-ups per address.

    A guesser at one address locks the handle only for that address; the owner signs in from
    theirs. The cap per handle bounds a guess spread over many addresses. A failed sign-in is
    counted when it starts (so that concurrent guesses cannot all slip past the check) and
    given back when the password was right.
    """

    per_handle_and_address: int
    per_address: int
    per_handle: int
    sign_ups_per_address: int
    counts: WindowCounts

    def attempt(self, request: web.Request, handle: str) -> Attempt:
        """Refuse with 429 when the handle or the address has no attempts left; else count
        one against each."""
        now = time.time()
        reset = self.counts.roll(now)
        limits = [(f"addr:{request.remote}", self.per_address)]
        with contextlib.suppress(InvalidHandle):  # no member has it: the address counts
            key = handle_key(handle)
            limits += [(f"handle:{key}", self.per_handle),
                       (f"handle-addr:{key}@{request.remote}", self.per_handle_and_address)]
        if any(self.counts.total(name) >= limit for name, limit in limits):
            raise _limited(request, reset - now, "failed sign-ins")
        for name, _ in limits:
            self.counts.add(name)
        return Attempt(self.counts.window, tuple(name for name, _ in limits))

    def succeeded(self, attempt: Attempt) -> None:
        self.counts.roll(time.time())
        if self.counts.window == attempt.window:  # a new window never counted it
            for name in attempt.names:
                self.counts.add(name, -1)

    def sign_up(self, request: web.Request) -> None:
        """Count a sign-up against its address before it is hashed; 429 beyond the limit."""
        now = time.time()
        reset = self.counts.roll(now)
        name = f"sign-up:{request.remote}"
        if self.counts.total(name) >= self.sign_ups_per_address:
            raise _limited(request, reset - now, "sign-ups")
        self.counts.add(name)


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
