"""Argon2 off the event loop: a few hashes at once in worker threads, a bounded queue.

One argon2 hash or check takes a CPU for a fifth of a second or more; on the loop, a few
sign-ins at once would stall every other request. argon2-cffi releases the GIL, so worker
threads hash while the loop serves requests. The workers run at a lower CPU priority: on a
machine with as many CPUs as workers the loop still gets a CPU whenever it has work.
New passwords (sign-ups) may take only half of the queue: a flood of sign-ups from many
addresses leaves room for sign-ins.
"""

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from core import members
from gateway.errors import ApiError

Result = TypeVar("Result")
MAX_WAITING = 64  # hashes queued beyond those running: more is refused, not queued
WORKER_NICENESS = 10  # added to the process's; 19 is the lowest priority


def _yield_to_the_loop() -> None:
    """Lower this worker thread's priority (Linux sets it per thread; argon2's own threads
    inherit it). Where a platform refuses, the worker keeps the process's priority."""
    with contextlib.suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))


class PasswordWorkers:
    def __init__(self, at_once: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="argon2",
                                           initializer=_yield_to_the_loop)
        self.max_pending = at_once + MAX_WAITING
        self.max_pending_new = at_once + MAX_WAITING // 2
        self.pending = 0  # running and queued
        self.pending_new = 0  # of them, hashes of new passwords

    async def hash(self, password: str) -> str:
        """core's hash of a new password (it refuses a password of the wrong length)."""
        if self.pending_new >= self.max_pending_new:
            raise ApiError("rate_limited", "too many sign-ups at once: try again in 1 s",
                           {"Retry-After": "1"})
        self.pending_new += 1
        try:
            return await self._run(members.hash_password, password)
        finally:
            self.pending_new -= 1

    async def matches(self, password_hash: str | None, password: str) -> bool:
        return await self._run(members.password_matches, password_hash, password)

    async def _run(self, work: Callable[..., Result], *args: object) -> Result:
        if self.pending >= self.max_pending:
            raise ApiError("rate_limited",
                           "too many sign-ins and sign-ups at once: try again in 1 s",
                           {"Retry-After": "1"})
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, work, *args)
        finally:
            self.pending -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
