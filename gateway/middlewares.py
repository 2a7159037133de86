"""Errors in one shape, CORS for the extension, and request metrics."""

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


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error.code, error.message, {**rate_headers(request),
                                                          **error.headers})
    except DomainError as error:
        return error_response(error.code, error.message, rate_headers(request))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = HTTP_CODES.get(error.status, "invalid_request")
        return error_response(code, error.reason or code.replace("_", " "))
    except Exception as error:
        if _database_down(error):
            log.warning("database unavailable: %s", error)
            request.app[keys.metrics_key].database_errors += 1
            return error_response("database_unavailable", "the database is unavailable: retry",
                                  {"Retry-After": "1"})
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response("internal_error", "something went wrong on our side")


def cors_middleware(origins: tuple[str, ...]):
    """Extension origins may call the API with a bearer token; cookies are never allowed."""

    def allowed(origin: str | None) -> bool:
        return origin is not None and any(fnmatch.fnmatchcase(origin, o) for o in origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        is_api = request.path.startswith("/api/")
        if request.method == "OPTIONS" and is_api and allowed(origin):
            response: web.StreamResponse = web.Response(status=204)
            response.headers.update({
                "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
                "Access-Control-Allow-Headers":
                    "Authorization, Content-Type, Idempotency-Key, Flattr-Identity",
                "Access-Control-Max-Age": "600",
            })
        else:
            response = await handler(request)
        if is_api and allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Expose-Headers"] = (
                "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "
                "Idempotent-Replayed"
            )
        return response

    return middleware


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    metrics = request.app[keys.metrics_key]
    metrics.observe(request, response.status, time.perf_counter() - started)
    response.headers.update(rate_headers(request))
    return response
