"""Grouping the concurrent writes of many requests into one (the click path and the bots'
acknowledgements under load), and their token lookups that missed the cache into one query.

Requests that arrive while a write is in flight wait for the next one; a process runs
FLATTR_FLATTR_WRITES_AT_ONCE writes at once (one by default). A request is answered only
after the write holding it committed, so every 201 is durable. Each writer keeps its
database connection between writes (taking one from the pool costs more than a small
batch's statement) and drops it on any error. Closing waits for the writes under way
(bounded), so that a process stopping neither cuts one short nor leaves a request unwritten.
"""

import asyncio
import contextvars
import logging
import time
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import outbox, tokens
from core.clock import utc_now
from core.db import READ_ONLY
from core.flattr_batch import FlattrRequest, Outcome, flattr_many
from core.notifications import CHAT_NETWORKS
from core.tokens import TokenInfo
from gateway.metrics import Metrics

log = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")
DRAIN_SECONDS = 5.0


class Batcher(Generic[Item, Result]):
    """Takes the items of concurrent requests to the database together: `apply` makes one
    write (or lookup) of a batch and answers each item, in order."""

    keeps_connections = True  # between writes, out of the pool

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 256,
                 max_concurrent_writes: int = 3, log_over_seconds: float | None = None) -> None:
        self.engine = engine
        # A write this long is logged as a pause of its requests (gateway/pauses.py's form).
        self.log_over_seconds = log_over_seconds
        self.max_batch = max_batch
        self.max_concurrent_writes = max_concurrent_writes
        self.pending: list[tuple[Item, asyncio.Future]] = []
        self.writing = 0
        self.scheduled = False
        self.idle: list[AsyncConnection] = []  # kept between writes
        self.writes: set[asyncio.Task] = set()  # under way

    async def apply(self, conn: AsyncConnection, items: list[Item]) -> list[Result]:
        raise NotImplementedError

    def written(self, count: int) -> None:
        """A batch of `count` items was written."""

    async def submit(self, item: Item) -> Result:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if not self.scheduled:
            # Let the other requests of this loop iteration join before writing. The write
            # serves many requests: it runs outside this one's context (its request id).
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._start_writes,
                                                 context=contextvars.Context())
        return await future

    def _start_writes(self) -> None:
        self.scheduled = False
        while self.pending and self.writing < self.max_concurrent_writes:
            batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
            self.writing += 1
            task = asyncio.get_running_loop().create_task(self._write(batch))
            self.writes.add(task)
            task.add_done_callback(self.writes.discard)

    async def _write(self, batch: list[tuple[Item, asyncio.Future]]) -> None:
        started = time.monotonic()
        try:
            outcomes = await self._apply([item for item, _ in batch])
        except Exception as error:  # the whole batch failed: each request learns why
            self._next_write()
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        # The next batch's statement goes out before these answers: the database works on
        # it while this process writes them.
        self._next_write()
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        self.written(len(batch))
        self._log_if_slow(started, len(batch))

    def _log_if_slow(self, started: float, items: int) -> None:
        ended = time.monotonic()
        if self.log_over_seconds is not None and ended - started >= self.log_over_seconds:
            pause = {"cause": "write", "pause_ms": (ended - started) * 1000,
                     "monotonic": ended, "items": items}
            log.warning("a batched write of %d requests took %.1f ms", items,
                        pause["pause_ms"], extra={"pause": pause})

    async def _apply(self, items: list[Item]) -> list[Result]:
        conn = self.idle.pop() if self.idle else await self.engine.connect()
        try:
            outcomes = await self.apply(conn, items)
        except BaseException:
            await _discard(conn)
            raise
        if self.keeps_connections:
            self.idle.append(conn)
        else:
            await conn.close()  # back to the pool
        return outcomes

    def _next_write(self) -> None:
        self.writing -= 1
        if self.pending and not self.scheduled:
            self._start_writes()

    async def close(self, timeout: float = DRAIN_SECONDS) -> None:
        """Finish the writes under way and those waiting for one, then close the kept
        connections."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self.pending or self.writes) and loop.time() < deadline:
            if self.writes:
                await asyncio.wait(set(self.writes), timeout=deadline - loop.time())
            else:
                await asyncio.sleep(0)  # the scheduled start of the next write runs
        if self.pending or self.writes:
            log.warning("closing with writes unfinished", extra={
                "waiting": len(self.pending), "writing": len(self.writes)})
        while self.idle:
            await self.idle.pop().close()


class FlattrBatcher(Batcher[FlattrRequest, Outcome]):
    def __init__(self, engine: AsyncEngine, metrics: Metrics, *, max_batch: int = 256,
                 max_concurrent_writes: int = 3, log_over_seconds: float | None = None) -> None:
        super().__init__(engine, max_batch=max_batch,
                         max_concurrent_writes=max_concurrent_writes,
                         log_over_seconds=log_over_seconds)
        self.metrics = metrics

    async def apply(self, conn: AsyncConnection, items: list[FlattrRequest]) -> list[Outcome]:
        return await flattr_many(conn, items, utc_now())

    def written(self, count: int) -> None:
        self.metrics.flattr_batches += 1
        self.metrics.flattr_batch_requests += count


class AckBatcher(Batcher[int, bool]):
    """Bots' acknowledgements of single deliveries, of the chat channels: whether each one
    is there (acknowledged now or before)."""

    async def apply(self, conn: AsyncConnection, items: list[int]) -> list[bool]:
        async with conn.begin():
            found = await outbox.ack_each(conn, items, channel=CHAT_NETWORKS)
        return [item in found for item in items]


class TokenBatcher(Batcher[str, TokenInfo | None]):
    """Looks up the token hashes the cache missed, of concurrent requests, in one query: the
    live token of each (None for one unknown or revoked). A cold cache, after a restart
    under load, then costs a query a batch rather than a pooled connection a request, which
    beyond the pool's size would open (and close) a new one each. Misses are rare once the
    cache is warm: the connection goes back to the pool after each lookup."""

    keeps_connections = False

    async def apply(self, conn: AsyncConnection, items: list[str]) -> list[TokenInfo | None]:
        await conn.execution_options(**READ_ONLY)
        async with conn.begin():
            found = await tokens.live_tokens_by_hash(conn, items)
        return [found.get(token_hash) for token_hash in items]


async def _discard(conn: AsyncConnection) -> None:
    """Give a connection that failed back to the pool as unusable: it is never reused."""
    try:
        await conn.invalidate()
        await conn.close()
    except Exception as error:  # it is already broken; the pool makes a new one
        log.debug("discarding a failed connection: %s", error)
