"""A change the gateway could not take now (a flattr, a take-back) is owed: kept in the
bot's pending work and sent again, as it is, once the gateway is back."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bots.client import GatewayUnavailable, RateLimited
from bots.pending import Pending

Result = TypeVar("Result")


async def now_or_owed(pending: Pending, key: str,
                      work: Callable[[], Awaitable[Result]]) -> Result | None:
    """`work()`'s result; None when the gateway was away and the work is owed under `key`
    (a later work under the same key replaces it). Other refusals are raised."""
    try:
        return await work()
    except (GatewayUnavailable, RateLimited):
        pending.add(key, work)
        return None
