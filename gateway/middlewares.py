"""The edge of every request: its id, errors in one shape, CORS for the extension, metrics."""

import fnmatch
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.errors import DomainError
from gateway import keys
from gateway.errors import ApiError, error_response
from gateway.logs import REQUEST_ID_HEADER, current_request_id, request_id_from
from gateway.ratelimit import headers as rate_headers

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
              415: "unsupported_media_type"}


# Server shutting down (57P01 admin, 57P02 crash), starting up or recovering (57P03), out
# of connection slots (53300); class 08 is "connection exception".
UNAVAILABLE_SQLSTATES = ("57P01", "57P02", "57P03", "53300")


def _database_down(error: Exception) -> bool:
    if isinstance(error, PoolTimeout | InterfaceError | OperationalError | ConnectionError
                  | OSError):
        return True
    # The click path runs statements on the asyncpg connection itself: its errors arrive
    # unwrapped by SQLAlchemy.
    if isinstance(error, asyncpg.exceptions.InterfaceError
                  | asyncpg.exceptions.InternalClientError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    cause = error.orig if isinstance(error, DBAPIError) else error
    sqlstate = getattr(cause, "sqlstate", None) or ""
    return sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES


def edge_middleware(origins: tuple[str, ...]):
    """Every request's edge: its id (on each log line and the answer's X-Request-Id), errors
    in one shape, CORS for the extension, and metrics.

    One layer rather than four: the click path crosses it twice a request.
    Extension origins may call the API with a bearer token; cookies are never allowed.
    """

    def allowed(origin: str | None) -> bool:
        return origin is not None and any(fnmatch.fnmatchcase(origin, o) for o in origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        # Keep-alive requests share their connection's task: the id is reset after each.
        token = current_request_id.set(request_id)
        try:
            origin = request.headers.get("Origin")
            cors = request.path.startswith("/api/") and allowed(origin)
            if request.method == "OPTIONS" and cors:
                response: web.StreamResponse = web.Response(status=204, headers=PREFLIGHT)
            else:
                try:
                    response = await handler(request)
                except web.HTTPRedirection as redirect:
                    redirect.headers[REQUEST_ID_HEADER] = request_id
                    raise
                except Exception as error:
                    response = _error_response(request, error)
            if cors:
                response.headers.update(CORS_HEADERS)
                response.headers["Access-Control-Allow-Origin"] = origin
            request.app[keys.metrics_key].observe(request, response.status,
                                                  time.perf_counter() - started)
            response.headers.update(rate_headers(request))
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            current_request_id.reset(token)

    return middleware


PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key, "
                                    "Flattr-Identity, X-Request-Id",
    "Access-Control-Max-Age": "600",
}
CORS_HEADERS = {
    "Vary": "Origin",
    "Access-Control-Expose-Headers": "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, "
                                     "X-RateLimit-Reset, Idempotent-Replayed, X-Request-Id",
}


def _error_response(request: web.Request, error: Exception) -> web.StreamResponse:
    """The one-shape answer to an error a handler raised (redirects pass through)."""
    if isinstance(error, ApiError):
        return error_response(error.code, error.message, {**rate_headers(request),
                                                          **error.headers})
    if isinstance(error, DomainError):
        return error_response(error.code, error.message, rate_headers(request))
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            raise error
        code = HTTP_CODES.get(error.status, "invalid_request")
        return error_response(code, error.reason or code.replace("_", " "))
    if _database_down(error):
        log.warning("database unavailable: %s", error)
        request.app[keys.metrics_key].database_errors += 1
        return error_response("database_unavailable", "the database is unavailable: retry",
                              {"Retry-After": "1"})
    log.error("unexpected error on %s %s", request.method, request.path, exc_info=error)
    return error_response("internal_error", "something went wrong on our side")
