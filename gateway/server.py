"""The HTTP server of the gateway: aiohttp's, with its own errors in the API's shape.

aiohttp answers a request it cannot parse (an unknown method, a header too large, a
malformed request line) before any middleware runs, in text/plain, from
`RequestHandler.handle_error`. Our request handler answers {"error": {"code", "message"}}
instead; a runner and a server class carry it, used by `flattr serve` and by the tests.
`run` serves one process and stops it gracefully on SIGTERM or SIGINT.
"""

import asyncio
import logging
import os
import signal
import threading
import uuid
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, BadStatusLine, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway import keys
from gateway.errors import error_response
from gateway.logs import REQUEST_ID_HEADER, current_request_id

log = logging.getLogger(__name__)
PARENT_CHECK_SECONDS = 1.0
CLEANUP_SECONDS = 10.0  # the batchers' last writes (5 s at most), Redis (2 s), pools
DEFAULT_FIELD_SIZE = 8190  # aiohttp's max_field_size when none is given
MESSAGE_LENGTH_MAX = 200


class JsonErrorsRequestHandler(RequestHandler):
    def __init__(self, manager: web.Server, *, max_field_size: int = DEFAULT_FIELD_SIZE,
                 **kwargs: Any) -> None:
        super().__init__(manager, max_field_size=max_field_size, **kwargs)
        self._max_field_size = max_field_size

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        # Answered outside our middleware: the id is made here; its log lines (aiohttp's
        # too) and the answer carry it.
        request_id = uuid.uuid4().hex
        token = current_request_id.set(request_id)
        try:
            # aiohttp's own answer first: it logs, and refuses once an answer has begun.
            super().handle_error(request, status, exc, message)
            if isinstance(exc, HttpProcessingError):
                status, text = self._parse_error(exc)
                response = error_response("bad_request", text, status=status)
            elif status == 504:
                text = "the request took too long"
                response = error_response("timeout", text, status=504)
            else:
                text = "something went wrong on our side"
                response = error_response("internal_error", text, status=status)
            log.warning("answered %d outside the handlers to %s: %s", status, request.remote,
                        text, extra={"status": status})
        finally:
            current_request_id.reset(token)
        response.headers[REQUEST_ID_HEADER] = request_id
        response.force_close()
        return response

    def _parse_error(self, error: HttpProcessingError) -> tuple[int, str]:
        """The status and message of a request aiohttp could not parse."""
        if isinstance(error, BadHttpMethod):
            if "HTTPS" in error.message:
                return 400, "this port speaks plain HTTP, not HTTPS"
            return 501, "the request method is not one this server knows"
        if isinstance(error, LineTooLong):
            limit = error.args[1]
            if limit == self._max_field_size:
                return 431, f"a request header is longer than {limit} bytes"
            return 414, f"the request line is longer than {limit} bytes"
        if "Too many headers" in error.message:
            return 431, "the request has too many headers"
        if isinstance(error, BadStatusLine) and "HTTP version" in error.message:
            return 505, "only HTTP/1.0 and HTTP/1.1 are spoken here"
        first_line = (error.message or "").strip().splitlines()[:1] or ["malformed request"]
        return 400, f"the request is not valid HTTP: {first_line[0][:MESSAGE_LENGTH_MAX]}"


class JsonErrorsServer(web.Server):
    def __call__(self) -> RequestHandler:
        return JsonErrorsRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose server answers even unparsable requests in the JSON shape."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return JsonErrorsServer(
            made.request_handler, request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation, loop=asyncio.get_running_loop(),
            **made._kwargs,
        )


class CannotListen(Exception):
    """The port is taken, or the address is not one of this machine's."""


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """SIGTERM and SIGINT caught from a process's first instant until it serves (a Python
    PID 1, as in a container, would ignore a SIGTERM it has no handler for). The first one
    asks for a graceful stop, honoured by `run` and the supervisor once their own handlers
    are in place: before anything is served, or at once after. A second one while still
    starting aborts it (a start stuck on a database that does not answer)."""

    def __init__(self) -> None:
        self.received: int | None = None
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum


async def _serve(app: web.Application, host: str, port: int, *, reuse_port: bool,
                 shutdown_timeout: float, parent_pid: int | None,
                 early: StopSignals | None) -> None:
    # Our own signal handlers, not aiohttp's: theirs raise GracefulExit inside the serving
    # task, and a cancelled task gives up its cleanup at the first timeout (batcher unflushed).
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    # A supervisor's worker is born with these signals blocked: one sent since comes now, to
    # the handlers above. One caught before them asks for the stop as well.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if early is not None and early.received is not None:
        stop.set()
    runner = GatewayRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=shutdown_timeout)
    await runner.setup()
    watching = loop.create_task(_stop_when_orphaned(parent_pid, stop)) if parent_pid else None
    try:
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        except OSError as error:
            raise CannotListen(f"cannot listen on {host}:{port}: "
                               f"{error.strerror or error}") from error
        log.info("listening on %s:%s", host, port)
        await stop.wait()
        log.info("stopping: no new connections, finishing the requests in flight", extra={
            "shutdown_timeout_seconds": shutdown_timeout})
        _exit_if_stuck(shutdown_timeout)
    finally:
        # Closes the listening socket, waits up to shutdown_timeout for the requests in
        # flight, then runs the app's cleanup: the batchers' writes, pools, Redis.
        await runner.cleanup()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        if watching is not None:
            watching.cancel()
    metrics = app[keys.metrics_key]
    log.info("stopped", extra={"requests": metrics.latency_count,
                               "flattrs_created": metrics.flattrs_created,
                               "flattr_batches": metrics.flattr_batches,
                               "flattr_batch_requests": metrics.flattr_batch_requests})


async def _stop_when_orphaned(parent_pid: int, stop: asyncio.Event) -> None:
    """A worker whose supervisor is gone (killed outright) stops instead of holding the
    port on its own."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    log.warning("the supervising process %d is gone", parent_pid)
    stop.set()


def _exit_if_stuck(shutdown_timeout: float) -> None:
    """Bound the whole stop: the requests get shutdown_timeout (then they are cancelled,
    which takes as long again at most), the resources CLEANUP_SECONDS. A process still
    there after that (a stuck library, a blocked loop) exits 1 from a thread."""
    limit = 2 * shutdown_timeout + CLEANUP_SECONDS

    def give_up() -> None:
        log.error("still stopping after %.0f s: exiting", limit)
        logging.shutdown()
        os._exit(1)

    watchdog = threading.Timer(limit, give_up)
    watchdog.daemon = True
    watchdog.start()


def run(app: web.Application, host: str, port: int, *, reuse_port: bool = False,
        shutdown_timeout: float = 10.0, parent_pid: int | None = None,
        early: StopSignals | None = None) -> None:
    """Serve until SIGINT or SIGTERM (or, given parent_pid, until that parent is gone, or
    given `early`, one that came before), then stop gracefully: no new connections, the
    requests in flight answered, every batched write committed, pools closed."""
    asyncio.run(_serve(app, host, port, reuse_port=reuse_port,
                       shutdown_timeout=shutdown_timeout, parent_pid=parent_pid, early=early))
