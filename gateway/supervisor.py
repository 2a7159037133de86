"""`flattr serve --workers N`: N gateway processes on one port, kept running by a parent.

Each worker is a process of its own, started with `spawn` (a fresh interpreter that shares
nothing with the parent), with its own event loop, database pool, batchers and Redis client.
They all listen on the port with SO_REUSEPORT and the kernel spreads new connections over
them. The parent serves no request: it holds a bound, not listening, socket on the port for
its whole life (a taken port is found before any worker starts, port 0 is chosen once for
all, and no other program takes the port while a worker restarts), restarts a worker that
dies after a back-off that grows while workers keep dying young, passes SIGTERM and SIGINT
on, and exits once every worker has: 0 when each of them stopped cleanly.

A stop asked for at any instant is graceful: the parent catches the signals from its start
(server.StopSignals) and starts no worker once asked to stop; a worker is born with them
blocked and lets them in once its loop's handlers are in place (server._serve).
"""

import logging
import multiprocessing
import os
import signal
import socket
import time
from dataclasses import dataclass, replace
from multiprocessing import resource_tracker
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from core.settings import Settings
from gateway.server import CLEANUP_SECONDS, STOP_SIGNALS, CannotListen, StopSignals
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
STABLE_AFTER_SECONDS = 30.0  # a worker that lived this long starts the back-off anew
KILL_MARGIN_SECONDS = 5.0  # past the workers' own bound on their stop


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to serve: passed to it, not read again from the environment."""

    settings: Settings
    gateway_settings: GatewaySettings
    host: str
    port: int
    shutdown_timeout: float
    parent_pid: int


def worker_main(spec: WorkerSpec) -> None:
    """A worker process: one gateway on the shared port until SIGTERM (or its parent dies)."""
    from gateway import server
    from gateway.app import create_app, freeze_startup_objects
    from gateway.logs import configure_logging

    configure_logging(spec.settings.log_format, spec.settings.log_level)
    app = create_app(spec.settings, spec.gateway_settings)
    app.on_startup.append(freeze_startup_objects)
    server.run(app, spec.host, spec.port, reuse_port=True,
               shutdown_timeout=spec.shutdown_timeout, parent_pid=spec.parent_pid)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) in the SO_REUSEPORT group the workers join."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        reserved = socket.socket(family, kind, proto)
    except OSError as error:
        raise CannotListen(f"cannot listen on {host}:{port}: {error.strerror or error}") \
            from error
    try:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind(address)
    except OSError as error:
        reserved.close()
        raise CannotListen(f"cannot listen on {host}:{port}: {error.strerror or error}") \
            from error
    return reserved


@dataclass
class Slot:
    """One of the N places for a worker: its process now, and how its last ones fared."""

    number: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    failures: int = 0  # deaths in a row of workers that did not live STABLE_AFTER_SECONDS
    restart_at: float | None = None


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    def __init__(self, spec: WorkerSpec, workers: int, early: StopSignals | None = None
                 ) -> None:
        self.spec = spec
        self.slots = [Slot(n) for n in range(1, workers + 1)]
        self.context = multiprocessing.get_context("spawn")
        self.early = early
        self.stopping = False

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status of the whole."""
        reserved = reserve_port(self.spec.host, self.spec.port)
        self.spec = replace(self.spec, port=reserved.getsockname()[1])
        wake_reader, wake_writer = socket.socketpair()
        wake_writer.setblocking(False)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        previous_wakeup = signal.set_wakeup_fd(wake_writer.fileno(), warn_on_full_buffer=False)
        if self.early is not None and self.early.received is not None:
            self.stopping = True
        try:
            log.info("%d gateway workers on %s:%d", len(self.slots), self.spec.host,
                     self.spec.port, extra={"workers": len(self.slots)})
            for slot in self.slots:
                if self.stopping:
                    break
                self._start(slot)
            self._supervise(wake_reader)
            return self._stop_all()
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for slot in self.slots:  # only after a failure of the parent itself
                if slot.process is not None and slot.process.is_alive():
                    slot.process.kill()
            wake_reader.close()
            wake_writer.close()
            reserved.close()

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _start(self, slot: Slot) -> None:
        process = self.context.Process(target=worker_main, args=(self.spec,),
                                       name=f"flattr-gateway-{slot.number}")
        # Born with SIGTERM and SIGINT blocked (a mask outlives fork and exec): one passed on
        # while it starts waits for its loop's handlers instead of killing it half made.
        # The spawn start method starts multiprocessing's resource tracker at its first
        # start, and unblocks both signals once it has: that is done before they are blocked.
        resource_tracker.ensure_running()
        unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None
        log.info("worker %d started (pid %d)", slot.number, process.pid,
                 extra={"worker": slot.number, "worker_pid": process.pid})

    def _supervise(self, wake_reader: socket.socket) -> None:
        while not self.stopping:
            now = time.monotonic()
            for slot in self.slots:
                if slot.restart_at is not None and slot.restart_at <= now:
                    self._start(slot)
            waiting = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
            timeout = max(0.0, min(waiting) - now) if waiting else None
            running = [s.process.sentinel for s in self.slots
                       if s.process is not None and s.restart_at is None]
            ready = wait([*running, wake_reader], timeout)
            if wake_reader in ready:
                wake_reader.recv(4096)
            if self.stopping:
                return
            for slot in self.slots:
                if slot.restart_at is None and slot.process is not None \
                        and not slot.process.is_alive():
                    self._schedule_restart(slot)

    def _schedule_restart(self, slot: Slot) -> None:
        process = slot.process
        process.join()
        lived = time.monotonic() - slot.started_at
        slot.failures = 1 if lived >= STABLE_AFTER_SECONDS else slot.failures + 1
        delay = min(BACKOFF_FIRST_SECONDS * 2 ** (slot.failures - 1), BACKOFF_MAX_SECONDS)
        slot.restart_at = time.monotonic() + delay
        log.warning(
            "worker %d (pid %d) %s after %.1f s; restarting it in %.1f s", slot.number,
            process.pid, describe_exit(process.exitcode), lived, delay,
            extra={"worker": slot.number, "worker_pid": process.pid,
                   "exit_code": process.exitcode, "restart_in_seconds": delay})

    def _stop_all(self) -> int:
        running = [s for s in self.slots if s.process is not None and s.process.is_alive()]
        log.info("stopping: passing SIGTERM on to %d workers", len(running))
        for slot in running:
            os.kill(slot.process.pid, signal.SIGTERM)
        # Each worker bounds its own stop (server._exit_if_stuck); this is the backstop.
        deadline = time.monotonic() + 2 * self.spec.shutdown_timeout + CLEANUP_SECONDS \
            + KILL_MARGIN_SECONDS
        for slot in running:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                log.error("worker %d (pid %d) did not stop in time: killing it",
                          slot.number, slot.process.pid)
                slot.process.kill()
                slot.process.join()
        clean = True
        for slot in running:
            code = slot.process.exitcode
            if code not in (0, -signal.SIGTERM):  # the SIGTERM was ours: a stop asked for
                clean = False
                log.error("worker %d (pid %d) stopped with %s", slot.number, slot.process.pid,
                          describe_exit(code))
        log.info("stopped" if clean else "stopped, not cleanly")
        return 0 if clean else 1
