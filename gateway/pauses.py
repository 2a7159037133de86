"""Pauses of a gateway process: how late its event loop wakes a probe, and how long each
garbage collection stops it. Every request in flight waits out a pause, so they make the
latency's tail; /metrics counts them and a long one is logged with its cause.

A logged pause carries `monotonic` (time.monotonic() when it ended, the same clock in every
process of the machine), so a benchmark can keep the pauses of its timed window.
"""

import asyncio
import gc
import logging
import time
from bisect import bisect_left
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

PROBE_SECONDS = 0.01
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GENERATIONS = 3


@dataclass
class Pauses:
    """What the probe and the collector saw since the process started."""

    lag_buckets: list[int] = field(default_factory=lambda: [0] * len(LAG_BUCKETS))
    lag_count: int = 0
    lag_sum: float = 0.0
    lag_max: float = 0.0
    collections: list[int] = field(default_factory=lambda: [0] * GENERATIONS)
    collection_seconds: list[float] = field(default_factory=lambda: [0.0] * GENERATIONS)
    collection_max: list[float] = field(default_factory=lambda: [0.0] * GENERATIONS)

    def observe_lag(self, seconds: float) -> None:
        self.lag_count += 1
        self.lag_sum += seconds
        self.lag_max = max(self.lag_max, seconds)
        for i in range(bisect_left(LAG_BUCKETS, seconds), len(LAG_BUCKETS)):
            self.lag_buckets[i] += 1

    def observe_collection(self, generation: int, seconds: float) -> None:
        self.collections[generation] += 1
        self.collection_seconds[generation] += seconds
        self.collection_max[generation] = max(self.collection_max[generation], seconds)

    def render(self) -> str:
        lines = [
            "# HELP flattr_event_loop_lag_seconds How late the event loop woke a probe "
            f"due every {PROBE_SECONDS} s.",
            "# TYPE flattr_event_loop_lag_seconds histogram",
        ]
        lines += [f'flattr_event_loop_lag_seconds_bucket{{le="{bound}"}} {count}'
                  for bound, count in zip(LAG_BUCKETS, self.lag_buckets, strict=True)]
        lines += [
            f'flattr_event_loop_lag_seconds_bucket{{le="+Inf"}} {self.lag_count}',
            f"flattr_event_loop_lag_seconds_sum {self.lag_sum:.6f}",
            f"flattr_event_loop_lag_seconds_count {self.lag_count}",
            "# HELP flattr_event_loop_lag_seconds_max The latest wake-up so far.",
            "# TYPE flattr_event_loop_lag_seconds_max gauge",
            f"flattr_event_loop_lag_seconds_max {self.lag_max:.6f}",
            "# HELP flattr_gc_pause_seconds Time the garbage collector stopped the process.",
            "# TYPE flattr_gc_pause_seconds summary",
        ]
        for generation in range(GENERATIONS):
            label = f'{{generation="{generation}"}}'
            lines += [
                f"flattr_gc_pause_seconds_sum{label} {self.collection_seconds[generation]:.6f}",
                f"flattr_gc_pause_seconds_count{label} {self.collections[generation]}",
            ]
        lines += ["# HELP flattr_gc_pause_seconds_max The longest collection so far.",
                  "# TYPE flattr_gc_pause_seconds_max gauge"]
        lines += [f'flattr_gc_pause_seconds_max{{generation="{generation}"}} '
                  f"{self.collection_max[generation]:.6f}" for generation in range(GENERATIONS)]
        return "\n".join(lines) + "\n"


class PauseWatch:
    """Times every collection (gc.callbacks) and wakes a probe every PROBE_SECONDS; a pause
    of at least `log_over` seconds is logged. The collector's callback only notes it: the
    probe writes the line, outside the collection."""

    def __init__(self, pauses: Pauses, log_over: float) -> None:
        self.pauses = pauses
        self.log_over = log_over
        self._collection_started = 0.0
        self._long: list[dict[str, Any]] = []

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._collection_started = now
            return
        seconds = now - self._collection_started
        self.pauses.observe_collection(info["generation"], seconds)
        if seconds >= self.log_over:
            self._long.append({"cause": "gc", "generation": info["generation"],
                               "collected": info["collected"], "pause_ms": seconds * 1000,
                               "monotonic": time.monotonic()})

    async def probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + PROBE_SECONDS
            await asyncio.sleep(PROBE_SECONDS)
            lag = max(loop.time() - due, 0.0)
            self.pauses.observe_lag(lag)
            if lag >= self.log_over:
                self._long.append({"cause": "loop", "pause_ms": lag * 1000,
                                   "monotonic": time.monotonic()})
            if self._long:
                self._write_long()

    def _write_long(self) -> None:
        long, self._long = self._long, []
        for pause in long:
            log.warning("the event loop paused %.1f ms (%s)", pause["pause_ms"],
                        pause["cause"], extra={"pause": pause})

    def start(self) -> asyncio.Task:
        gc.callbacks.append(self._on_collection)
        return asyncio.get_running_loop().create_task(self.probe(), name="pause probe")

    def stop(self, task: asyncio.Task) -> None:
        task.cancel()
        gc.callbacks.remove(self._on_collection)
        self._write_long()


def watch_pauses(pauses: Pauses, log_over_seconds: float):
    """A cleanup context that watches for the app's lifetime."""

    async def watching(_app: web.Application) -> AsyncIterator[None]:
        watch = PauseWatch(pauses, log_over_seconds)
        task = watch.start()
        yield
        watch.stop(task)

    return watching
