"""The API's endpoints as data: registered with aiohttp and described in OpenAPI from one list.

Each endpoint names its scope, its body and query models and whether it moves money (and
so honours Idempotency-Key). `handle` runs the same pipeline for all of them: limits,
authentication, scope, parsing, one database transaction, idempotent replay.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from core import replies
from core.db import READ_ONLY
from core.errors import NotFound, check
from core.settings import Settings
from gateway import auth, keys
from gateway.bodies import read_capped
from gateway.errors import ApiError
from gateway.json import dumps, loads
from gateway.principal import Principal

MAX_BODY_BYTES = 64 * 1024
PATH_ID = re.compile(r"[1-9][0-9]{0,17}")


@dataclass
class Call:
    request: web.Request
    conn: AsyncConnection | None  # None for a batched write
    principal: Principal | None
    body: Any
    query: Any

    @property
    def settings(self) -> Settings:
        return self.request.app[keys.settings_key]

    @property
    def member_id(self) -> int:
        check(self.principal is not None, "a member route was called without a principal")
        return self.principal.member_id

    def path_id(self, name: str = "id") -> int:
        raw = self.request.match_info[name]
        if not PATH_ID.fullmatch(raw):
            raise NotFound(f"{raw!r} is not an id")
        return int(raw)


Reply = dict[str, Any] | tuple[int, dict[str, Any]]
Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    scope: str | tuple[str, ...] | None  # a tuple: any one of these scopes
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    money: bool
    errors: tuple[str, ...]
    writes: bool
    batched: bool  # without an Idempotency-Key the handler writes through a batcher
    # The handler opens its own short connections: it does slow work (argon2) between them,
    # which must hold neither a pooled connection nor SQLite's write lock.
    own_connections: bool = False
    description: str | None = None  # beyond the summary, for the OpenAPI document
    # A bot acting for a chat user (Flattr-Identity) may call it although its scope is more
    # than such a bot has: what a member does from their chat (their budget, unlinking it).
    chat_user_may: bool = False


@dataclass
class Api:
    """A list of endpoints that handler modules fill with decorators."""

    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self, method: str, path: str, *, summary: str, scope: str | tuple[str, ...] | None,
        body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None, status: int = 200, money: bool = False,
        errors: tuple[str, ...] = (), writes: bool | None = None, batched: bool = False,
        own_connections: bool = False, description: str | None = None,
        chat_user_may: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(
                method, path, handler, summary, scope, body, query, response, status, money,
                errors, method != "GET" if writes is None else writes, batched, own_connections,
                description, chat_user_may,
            ))
            return handler

        return register


async def handle(endpoint: Endpoint, request: web.Request) -> web.Response:
    limiter = request.app[keys.limiter_key]
    limiter.check_address(request)  # first: an invalid token costs a count before a lookup
    principal = await auth.authenticate(request)
    if principal is not None:
        limiter.check_token(request, principal)
    if endpoint.scope is not None:
        if principal is None:
            raise ApiError("unauthorized", "sign in: send Authorization: Bearer <token>",
                           {"WWW-Authenticate": "Bearer"})
        if not (endpoint.chat_user_may and principal.acting_for):
            principal.require(endpoint.scope)
    body = await _parse_body(endpoint, request)
    query = _parse_query(endpoint, request)
    engine = request.app[keys.engine_key]
    idempotency_key = request.headers.get("Idempotency-Key") if endpoint.money else None

    if endpoint.own_connections or (endpoint.batched and idempotency_key is None):
        reply = await endpoint.handler(Call(request, None, principal, body, query))
        return _json(*_split(reply, endpoint), request)

    if not endpoint.writes:
        async with engine.connect() as conn:
            await conn.execution_options(**READ_ONLY)
            status, payload = _split(await endpoint.handler(Call(request, conn, principal, body,
                                                                  query)), endpoint)
        return _json(status, payload, request)

    async with engine.begin() as conn:
        if idempotency_key is not None:
            scope, fingerprint = _idempotency_scope(request, principal, endpoint)
            _check_key(idempotency_key)
            stored = await replies.claim_key(conn, scope, idempotency_key, fingerprint)
            if stored is not None:
                response = web.Response(status=stored.status, body=stored.body.encode(),
                                        content_type="application/json")
                response.headers["Idempotent-Replayed"] = "true"
                return response
        status, payload = _split(
            await endpoint.handler(Call(request, conn, principal, body, query)), endpoint
        )
        payload = _with_currency(payload, request)
        if idempotency_key is not None:
            await replies.store_reply(conn, scope, idempotency_key, status,
                                      dumps(payload).decode())
    return web.Response(status=status, body=dumps(payload), content_type="application/json")


def _split(reply: Reply, endpoint: Endpoint) -> tuple[int, dict[str, Any]]:
    return reply if isinstance(reply, tuple) else (endpoint.status, reply)


def _with_currency(payload: dict[str, Any], request: web.Request) -> dict[str, Any]:
    return {"currency": request.app[keys.settings_key].currency, **payload}


def _json(status: int, payload: dict[str, Any], request: web.Request) -> web.Response:
    return web.Response(status=status, body=dumps(_with_currency(payload, request)),
                        content_type="application/json")


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise ApiError("invalid_request", "an Idempotency-Key has 1 to 200 printable characters")


def _idempotency_scope(
    request: web.Request, principal: Principal | None, endpoint: Endpoint
) -> tuple[str, str]:
    # The member, not the token: a retry with another token (or through a bot acting for
    # the member's chat identity) is the same request.
    who = f"member:{principal.member_id}" if principal else f"addr:{request.remote}"
    fingerprint = replies.request_fingerprint(
        endpoint.method, request.path, request.query_string, request.get(keys.raw_body_key, b"")
    )
    return who[:64], fingerprint


async def _parse_body(endpoint: Endpoint, request: web.Request) -> Any:
    if endpoint.body is None:
        return None
    raw = await read_body(request)
    request[keys.raw_body_key] = raw
    if (request.headers.get("Content-Type") != "application/json"
            and request.content_type not in ("application/json", "application/octet-stream", "")):
        raise ApiError("unsupported_media_type", "send the body as application/json")
    try:
        data = loads(raw) if raw else None
    except ValueError as error:
        raise ApiError("invalid_json", f"the body is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ApiError("invalid_request", "the body must be a JSON object")
    # JSON can carry U+0000 only as an escape, so a body without one has none to look for.
    return _validate(endpoint.body, data, may_hold_nul=b"\\u0000" in raw)


async def read_body(request: web.Request, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, however it arrives (segments, chunks), within the cap and in time."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    seconds = request.app[keys.gateway_settings_key].request_body_timeout_seconds
    try:
        if request.content.is_eof():
            # The body came whole with its head (the click path's does): all of it is in
            # the buffer, taken without a read to wait for or a timer to arm.
            raw: bytes | None = request.content.read_nowait(max_bytes + 1)
        else:
            async with asyncio.timeout(seconds):
                raw = await read_capped(request.content, max_bytes)
    except TimeoutError:
        # Also where a chunked body turns out malformed: aiohttp then drops the stream
        # without ending it.
        raise ApiError("request_timeout", f"the body did not arrive within {seconds:g} s"
                       ) from None
    except HttpProcessingError as error:
        raise ApiError("bad_request", f"the body is not valid HTTP: {error.message}") from None
    if raw is None or len(raw) > max_bytes:
        raise _too_large(max_bytes)
    return raw


def _too_large(max_bytes: int = MAX_BODY_BYTES) -> ApiError:
    return ApiError("payload_too_large", f"a request body has at most {max_bytes} bytes")


def _parse_query(endpoint: Endpoint, request: web.Request) -> Any:
    if endpoint.query is None:
        return None
    values: dict[str, str] = {}
    for name in request.query:
        found = request.query.getall(name)
        if len(found) > 1:
            raise ApiError("invalid_request", f"the query parameter {name!r} is given twice")
        values[name] = found[0]
    return _validate(endpoint.query, values)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _validate(model: type[BaseModel], data: dict[str, Any], may_hold_nul: bool = True
              ) -> BaseModel:
    # PostgreSQL text cannot hold U+0000 (it would be a 500 there); SQLite would keep it.
    if may_hold_nul and _has_nul(data):
        raise ApiError("invalid_request", "text may not contain the NUL character (U+0000)")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError("invalid_request", f"{where}: {first['msg']}") from error


def register(app: web.Application, api: Api, prefix: str) -> None:
    for endpoint in api.endpoints:
        app.router.add_route(endpoint.method, prefix + endpoint.path, partial(handle, endpoint))
