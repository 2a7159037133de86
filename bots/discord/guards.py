"""What keeps one member from flooding the gateway: `PerUser`, a token bucket a user,
`burst` events at once, then one every `refill_seconds`; the buckets of users not seen for
the longest are forgotten first."""

import time
from collections import OrderedDict

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

