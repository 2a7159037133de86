"""The embeddable button: the count badge, the no-extension flattr, a public page a thing.

A creator's page links to `/flattr?url=PAGE` around the image `/badge.svg?url=PAGE`. The
badge is public and safe to embed anywhere (an SVG without scripts, its own strict policy);
its count is kept for a minute in Redis, or in the process without it.
"""

import hashlib
import logging
import time
from urllib.parse import quote

from aiohttp import web
from markupsafe import escape
from redis.exceptions import RedisError

from core import flattrs
from core.db import READ_ONLY
from core.errors import DomainError
from core.thing_keys import parse_thing_key
from gateway import keys
from gateway.api import Call
from gateway.handlers.things import lookup
from gateway.pages.visits import Visit, page, pages_settings_key, render, sign_in_url
from gateway.principal import Principal
from gateway.schemas import ThingQuery

log = logging.getLogger(__name__)
CACHE_LIMIT = 10_000
MAX_TARGET_LENGTH = 4096


class BadgeCounts:
    """Flattr counts of things for a short while: in Redis when there is one, else here."""

    def __init__(self) -> None:
        self.local: dict[str, tuple[int, float]] = {}

    async def get(self, app: web.Application, key: str) -> int | None:
        redis = app[keys.redis_key]
        if redis is not None:
            try:
                found = await redis.get(self._redis_key(app, key))
                return None if found is None else int(found)
            except (RedisError, OSError) as error:
                log.warning("badge counts kept in-process while Redis is away: %s", error)
        found = self.local.get(key)
        return found[0] if found and found[1] > time.monotonic() else None

    async def put(self, app: web.Application, key: str, count: int) -> None:
        seconds = app[pages_settings_key].badge_cache_seconds
        if seconds <= 0:
            return
        redis = app[keys.redis_key]
        if redis is not None:
            try:
                await redis.set(self._redis_key(app, key), count, ex=seconds)
                return
            except (RedisError, OSError):
                pass
        if len(self.local) >= CACHE_LIMIT:
            self.local.clear()
        self.local[key] = (count, time.monotonic() + seconds)

    @staticmethod
    def _redis_key(app: web.Application, key: str) -> str:
        namespace = app[keys.gateway_settings_key].redis_namespace
        return f"{namespace}:badge:{hashlib.sha256(key.encode()).hexdigest()}"


badge_counts_key = web.AppKey("badge_counts", BadgeCounts)


def _target(source) -> str:
    """The url (or thing key) a request names; a refusal when it names none."""
    target = source.get("url") or source.get("thing") or ""
    if not isinstance(target, str) or not target or len(target) > MAX_TARGET_LENGTH:
        raise DomainError("give the address of the page to flattr: ?url=https://…")
    return target


def badge_svg(label: str, value: str) -> str:
    value_width = 10 + 8 * len(value)
    width = 52 + value_width
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{escape(label)}: {escape(value)}"><title>{escape(label)}: '
        f'{escape(value)}</title><rect width="52" height="20" rx="3" fill="#0b5e33"/>'
        f'<rect x="48" width="{value_width + 4}" height="20" rx="3" fill="#1b1b1f"/>'
        f'<rect x="48" width="4" height="20" fill="#1b1b1f"/>'
        f'<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="7" y="14">Flattr</text><text x="{54 + 3}" y="14">{escape(value)}</text>'
        f"</g></svg>"
    )


async def badge(request: web.Request) -> web.Response:
    """GET /badge.svg?url=…: how often the page was flattred, as an image."""
    headers = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
               "X-Content-Type-Options": "nosniff", "Access-Control-Allow-Origin": "*",
               "Cross-Origin-Resource-Policy": "cross-origin"}
    seconds = request.app[pages_settings_key].badge_cache_seconds
    try:
        request.app[keys.limiter_key].check_address(request)
        key = parse_thing_key(_target(request.query)).key
    except DomainError as error:
        return web.Response(status=429 if error.code == "rate_limited" else 400,
                            text=badge_svg("Flattr", "?"), content_type="image/svg+xml",
                            headers={**headers, **getattr(error, "headers", {})})
    counts = request.app[badge_counts_key]
    count = await counts.get(request.app, key)
    if count is None:
        async with request.app[keys.engine_key].connect() as conn:
            await conn.execution_options(**READ_ONLY)
            found = await lookup(_lookup_call(request, conn, None, key))
        count = found["count_total"]
        await counts.put(request.app, key, count)
    return web.Response(text=badge_svg("Flattr", str(count)), content_type="image/svg+xml",
                        headers={**headers, "Cache-Control": f"public, max-age={seconds}"})


def _lookup_call(request: web.Request, conn, principal: Principal | None, key: str) -> Call:
    return Call(request, conn, principal, None, ThingQuery.model_construct(url=None, thing=key))


async def _thing(visit: Visit, key: str) -> dict:
    principal = visit.call().principal if visit.member else None
    async with visit.app[keys.engine_key].connect() as conn:
        await conn.execution_options(**READ_ONLY)
        return await lookup(_lookup_call(visit.request, conn, principal, key))


@page()
async def thing_page(visit: Visit) -> web.StreamResponse:
    """GET /t/<key>: a thing's public page: what it is, its owner, its count, a button."""
    key = parse_thing_key(visit.request.match_info["key"]).key
    found = await _thing(visit, key)
    return render(visit, "thing.html", {"title": _title(found), "thing": found,
                                        "flattr_url": "/flattr?thing=" + quote(key, safe="")})


def _title(found: dict) -> str:
    return found["url"] or found["key"]


async def confirm_page(visit: Visit, *, error: str | None = None, status: int = 200,
                       flattred: bool = False) -> web.StreamResponse:
    visit.signed_in()
    source = visit.request.query if visit.request.method == "GET" else \
        await visit.request.post()
    key = parse_thing_key(_target(source)).key
    found = await _thing(visit, key)
    return render(visit, "flattr.html", {
        "title": "Flattr " + _title(found), "error": error, "thing": found,
        "flattred": flattred, "thing_page": "/t/" + quote(key, safe=""),
    }, status=status)


@page()
async def show_flattr(visit: Visit) -> web.StreamResponse:
    """GET /flattr?url=…: a visitor signs in first and comes back here."""
    if visit.member is None:
        _target(visit.request.query)
        return web.Response(status=303, headers={"Location": sign_in_url(visit.request)})
    return await confirm_page(visit)


@page(on_error=confirm_page)
async def do_flattr(visit: Visit) -> web.StreamResponse:
    """POST /flattr: one click, with the form's CSRF token."""
    member = visit.signed_in()
    posted = await visit.form()
    target = _target(posted)
    async with visit.app[keys.engine_key].begin() as conn:
        done = await flattrs.flattr(conn, member.id, target, source="button")
    if done.created:
        visit.app[keys.metrics_key].flattrs_created += 1
    return await confirm_page(visit, flattred=True)


def add_routes(app: web.Application) -> None:
    app[badge_counts_key] = BadgeCounts()
    app.router.add_get("/badge.svg", badge)
    app.router.add_get("/flattr", show_flattr)
    app.router.add_post("/flattr", do_flattr)
    app.router.add_get("/t/{key:.+}", thing_page)
