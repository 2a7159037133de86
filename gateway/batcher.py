"""Grouping concurrent flattrs into one write (the click path under load).

Requests that arrive while a write is in flight wait for the next one; a process runs
FLATTR_FLATTR_WRITES_AT_ONCE writes at once (one by default). A request is answered only
after the write holding it committed, so every 201 is durable. Each writer keeps its
database connection between writes (taking one from the pool costs more than a small
batch's statement) and drops it on any error.
"""

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.clock import utc_now
from core.flattr_batch import FlattrRequest, Outcome, flattr_many
from gateway.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass
class FlattrBatcher:
    engine: AsyncEngine
    metrics: Metrics
    max_batch: int = 256
    max_concurrent_writes: int = 3
    pending: list[tuple[FlattrRequest, asyncio.Future]] = field(default_factory=list)
    writing: int = 0
    scheduled: bool = False
    idle: list[AsyncConnection] = field(default_factory=list)  # kept between writes

    async def submit(self, request: FlattrRequest) -> Outcome:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((request, future))
        if not self.scheduled:
            # Let the other requests of this loop iteration join before writing.
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._start_writes)
        return await future

    def _start_writes(self) -> None:
        self.scheduled = False
        while self.pending and self.writing < self.max_concurrent_writes:
            batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
            self.writing += 1
            asyncio.get_running_loop().create_task(self._write(batch))

    async def _write(self, batch: list[tuple[FlattrRequest, asyncio.Future]]) -> None:
        try:
            outcomes = await self._flattr([request for request, _ in batch])
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
        self.metrics.flattr_batches += 1
        self.metrics.flattr_batch_requests += len(batch)

    async def _flattr(self, requests: list[FlattrRequest]) -> list[Outcome]:
        conn = self.idle.pop() if self.idle else await self.engine.connect()
        try:
            outcomes = await flattr_many(conn, requests, utc_now())
        except BaseException:
            await _discard(conn)
            raise
        self.idle.append(conn)
        return outcomes

    def _next_write(self) -> None:
        self.writing -= 1
        if self.pending and not self.scheduled:
            self._start_writes()

    async def close(self) -> None:
        while self.idle:
            await self.idle.pop().close()


async def _discard(conn: AsyncConnection) -> None:
    """Give a connection that failed back to the pool as unusable: it is never reused."""
    try:
        await conn.invalidate()
        await conn.close()
    except Exception as error:  # it is already broken; the pool makes a new one
        log.debug("discarding a failed connection: %s", error)
