"""A change the gateway could not take now (a flattr, a take-back) is owed: kept in the
bot's pending work and sent again, as it is, once the gateway is back.

Per key (a member and a thing) the latest intent wins: new work runs at once, and once the
gateway answered it, whatever was owed under the key from before is forgotten (it would
otherwise land later and undo the new work); new work the gateway cannot take replaces it.
Shared by the chat bots.
"""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bots.client import GatewayClient, GatewayError, GatewayUnavailable, RateLimited
from bots.pending import Pending

Result = TypeVar("Result")


async def now_or_owed(pending: Pending, key: str,
                      work: Callable[[], Awaitable[Result]]) -> Result | None:
    """`work()`'s result; None when the gateway was away and the work is owed under `key`.
    Other refusals are raised. The caller holds `pending.locks.hold(key)`, which owed work
    holds too while it runs: the two never cross."""
    assert pending.locks.held(key), f"now_or_owed without the lock of {key}"
    try:
        result = await work()
    except (GatewayUnavailable, RateLimited):
        pending.add(key, work)
        return None
    except GatewayError:  # answered: what was owed from before is superseded all the same
        pending.forget(key)
        raise
    pending.forget(key)
    return result


def work_key(who: str, thing: str) -> str:
    """What a member's work on a thing (or a URL) is owed and locked under."""
    return f"{who} {thing}"


async def take_back_quietly(gateway: GatewayClient, who: str, thing: str) -> None:
    """Take back a flattr; none there (or no member) is no news."""
    try:
        await gateway.take_back(who, thing=thing)
    except GatewayError as error:
        if error.code not in ("not_found", "identity_not_linked"):
            raise
