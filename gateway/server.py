"""The HTTP server of the gateway: aiohttp's, with its own errors in the API's shape.

aiohttp answers a request it cannot parse (an unknown method, a header too large, a
malformed request line) before any middleware runs, in text/plain, from
`RequestHandler.handle_error`. Our request handler answers {"error": {"code", "message"}}
instead; a runner and a server class carry it, used by `flattr serve` and by the tests.
"""

import asyncio
import contextlib
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, BadStatusLine, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.errors import error_response

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
        # aiohttp's own answer first: it logs, and refuses once an answer has begun.
        super().handle_error(request, status, exc, message)
        if isinstance(exc, HttpProcessingError):
            status, text = self._parse_error(exc)
            response = error_response("bad_request", text, status=status)
        elif status == 504:
            response = error_response("timeout", "the request took too long", status=504)
        else:
            response = error_response("internal_error", "something went wrong on our side",
                                      status=status)
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


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = GatewayRunner(app, handle_signals=True, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()  # until SIGINT or SIGTERM raises GracefulExit
    finally:
        await runner.cleanup()


def run(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly (as web.run_app does)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, host, port))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(main)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
