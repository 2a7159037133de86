"""Work a bot owes the gateway while it cannot be reached: a flattr or a take-back per
(member, thing), the latest winning, tried again with back-off until the gateway answers.

A flattr keeps the Idempotency-Key it was first sent with, so a flattr that did land before
the gateway went quiet is not made twice. A take-back queued after a flattr replaces it: if
the flattr landed, the take-back undoes it; if not, the take-back finds nothing, which is
the same end. The queue is bounded; it lives in the bot's process.

Owed work runs holding its key's lock in `locks`: a bot that also holds it while it acts on
the same key (a newer reaction, a command) never races the owed work it supersedes.
"""

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable

from bots.client import GatewayError, GatewayUnavailable, RateLimited

log = logging.getLogger("flattr.bots.pending")
MAX_PENDING = 10_000

Work = Callable[[], Awaitable[object]]


class KeyedLocks:
    """A lock per key, made when first wanted and dropped when no one holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    def held(self, key: str) -> bool:
        found = self._locks.get(key)
        return found is not None and found[0].locked()

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


class Pending:
    def __init__(self, *, first_wait_seconds: float = 2.0, max_wait_seconds: float = 60.0,
                 max_entries: int = MAX_PENDING) -> None:
        self.first_wait_seconds = first_wait_seconds
        self.max_wait_seconds = max_wait_seconds
        self.max_entries = max_entries
        self.locks = KeyedLocks()
        self._work: OrderedDict[str, Work] = OrderedDict()
        self._added = asyncio.Event()
        self.done = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._work)

    def __contains__(self, key: str) -> bool:
        return key in self._work

    def add(self, key: str, work: Work) -> None:
        """Owe `work` under `key`: it replaces what was owed under the same key."""
        self._work.pop(key, None)
        self._work[key] = work
        while len(self._work) > self.max_entries:
            lost, _ = self._work.popitem(last=False)
            self.dropped += 1
            log.error("pending work dropped (queue full): %s", lost)
        self._added.set()

    def forget(self, key: str) -> None:
        self._work.pop(key, None)

    async def run_once(self) -> bool:
        """Try everything owed, oldest first, each holding its key's lock; False when the
        gateway is still away."""
        for key in list(self._work):
            async with self.locks.hold(key):
                if not await self._run(key):
                    return False
        return True

    async def _run(self, key: str) -> bool:
        work = self._work.get(key)
        if work is None:  # settled meanwhile by newer work on its key
            return True
        try:
            await work()
        except (GatewayUnavailable, RateLimited):
            return False
        except GatewayError as error:  # answered: the work is settled, if not as hoped
            log.info("pending work %s answered %s", key, error.code)
        except Exception:  # the bot's own fault: kept, it would stop all owed after it
            log.exception("pending work %s failed; dropped", key)
            self.dropped += 1
        if self._work.get(key) is work:
            del self._work[key]
        self.done += 1
        return True

    async def run_forever(self) -> None:
        wait = self.first_wait_seconds
        while True:
            if not self._work:
                self._added.clear()
                await self._added.wait()
                wait = self.first_wait_seconds
            await asyncio.sleep(wait)
            try:
                settled = await self.run_once()
            except Exception:  # never dies quietly: logged, and tried again after a while
                log.exception("owed work failed; trying again")
                settled = False
            wait = self.first_wait_seconds if settled else min(wait * 2, self.max_wait_seconds)
