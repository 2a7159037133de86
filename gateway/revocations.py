"""Token revocations announced to every gateway process through Redis pub/sub.

Each process caches tokens for a while; a revocation clears the cache of the process that
made it at once, and of the others as soon as they hear it here. Without Redis there is
one process (the embedded default) and nothing to announce.
"""

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.auth import TokenCache

log = logging.getLogger(__name__)


def channel(namespace: str) -> str:
    return f"{namespace}:token-revoked"


async def announce(redis: Redis | None, namespace: str, token_id: int) -> None:
    if redis is None:
        return
    try:
        await redis.publish(channel(namespace), str(token_id))
    except (RedisError, OSError) as error:
        log.warning("could not announce the revocation of token %s: %s", token_id, error)


async def listen(redis: Redis, namespace: str, cache: TokenCache) -> None:
    """Forget announced tokens; reconnect after Redis goes away."""
    task = asyncio.current_task()
    while task is None or not task.cancelling():
        try:
            async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel(namespace))
                while task is None or not task.cancelling():
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        with contextlib.suppress(ValueError):
                            cache.forget_token(int(message["data"]))
        except (RedisError, OSError):
            await asyncio.sleep(1.0)
    raise asyncio.CancelledError
