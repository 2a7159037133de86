"""What every page shares: the visit (session, member, CSRF token), forms, answers.

A session is a row named by the hash of the `flattr_session` cookie (HttpOnly, SameSite=Lax,
Secure over https). Every form carries a CSRF token: the session's own once signed in, and
before that the value of the `flattr_csrf` cookie (double submit); a form posted from
another origin is refused as well. The JSON API never reads these cookies.
"""

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncConnection

from core import members, web_sessions
from core.db import READ_ONLY
from core.errors import DomainError, InvalidState
from core.members import Member
from core.money import format_money
from core.settings import Settings
from core.web_sessions import Session
from gateway import keys
from gateway.api import Call
from gateway.errors import STATUS_OF_CODE
from gateway.pages.settings import PagesSettings
from gateway.principal import Principal

pages_settings_key = web.AppKey("pages_settings", PagesSettings)
SESSION_COOKIE = "flattr_session"
CSRF_COOKIE = "flattr_csrf"
CSRF_FIELD = "csrf"
MAX_FORM_BYTES = 16 * 1024
MAX_NEXT_LENGTH = 2048
MAX_FORM_KEY_LENGTH = 64
CSRF_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'none'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# The scopes a signed-in member acts with when a page calls an API handler for them.
MEMBER_SCOPES = frozenset({"read", "flattr", "account"})


class SignInFirst(Exception):
    """The page needs a signed-in member: the visitor is sent to sign in and back."""


class FormRefused(Exception):
    """A form without the right CSRF token, or posted from another origin."""


@dataclass
class Visit:
    request: web.Request
    session: Session | None
    member: Member | None
    anonymous_csrf: str
    new_csrf_cookie: bool
    cookies: list[tuple[str, str | None]] = field(default_factory=list)  # to set, None: delete

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def settings(self) -> Settings:
        return self.app[keys.settings_key]

    @property
    def pages(self) -> PagesSettings:
        return self.app[pages_settings_key]

    @property
    def csrf(self) -> str:
        return self.session.csrf_token if self.session else self.anonymous_csrf

    def signed_in(self) -> Member:
        if self.member is None:
            raise SignInFirst()
        return self.member

    def money(self, micros: int | None) -> str:
        return "" if micros is None else format_money(int(micros), self.settings.currency)

    def call(self, conn=None) -> Call:
        """A Call of the API's handlers, made by the signed-in member with a member's scopes."""
        member = self.signed_in()
        return Call(self.request, conn, Principal(member.id, 0, MEMBER_SCOPES), None, None)

    async def form(self) -> MultiDictProxy:
        """The posted form, once its CSRF token and origin are checked."""
        origin = self.request.headers.get("Origin")
        if origin is not None and origin != "null" and urlsplit(origin).netloc != \
                self.request.host:
            raise FormRefused("this form was sent from another site")
        if self.request.content_length is not None and \
                self.request.content_length > MAX_FORM_BYTES:
            raise FormRefused("this form is too large")
        posted = await self.request.post()
        token = posted.get(CSRF_FIELD)
        if not isinstance(token, str) or not secrets.compare_digest(token.encode(),
                                                                    self.csrf.encode()):
            raise FormRefused("this form has expired or was not sent from this site: "
                              "reload the page and send it again")
        return posted

    async def act(self, work: Callable[[AsyncConnection, Member, MultiDictProxy],
                                       Awaitable[Any]]) -> Any:
        """A signed-in member's form, checked, then `work(conn, member, form)` in one
        transaction."""
        member = self.signed_in()
        posted = await self.form()
        async with self.app[keys.engine_key].begin() as conn:
            return await work(conn, member, posted)

    async def start_session(self, member_id: int) -> None:
        """Sign the member in: a new session (a new CSRF token) replaces any other cookie."""
        lifetime = timedelta(days=self.pages.session_days)
        async with self.app[keys.engine_key].begin() as conn:
            if self.session is not None:
                await web_sessions.end_session(conn, self.session.id)
            secret, self.session = await web_sessions.start_session(conn, member_id, lifetime)
            self.member = await members.member_by_id(conn, member_id)
        self.cookies.append((SESSION_COOKIE, secret))

    async def end_session(self) -> None:
        if self.session is not None:
            async with self.app[keys.engine_key].begin() as conn:
                await web_sessions.end_session(conn, self.session.id)
        self.session, self.member = None, None
        self.cookies.append((SESSION_COOKIE, None))


def secure_cookies(request: web.Request) -> bool:
    return request.secure or request.app[keys.settings_key].public_url.startswith("https:")


async def load_visit(request: web.Request) -> Visit:
    session = member = None
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        async with request.app[keys.engine_key].connect() as conn:
            await conn.execution_options(**READ_ONLY)
            session = await web_sessions.session_by_secret(conn, secret)
            if session is not None:
                member = await members.member_by_id(conn, session.member_id)
    anonymous = request.cookies.get(CSRF_COOKIE, "")
    fresh = CSRF_SHAPE.fullmatch(anonymous) is None
    if fresh:
        anonymous = secrets.token_urlsafe(32)
    visit = Visit(request, session, member, anonymous, fresh)
    if secret and session is None:
        visit.cookies.append((SESSION_COOKIE, None))  # a stale cookie goes
    return visit


def finish(visit: Visit, response: web.StreamResponse) -> web.StreamResponse:
    secure = secure_cookies(visit.request)
    if visit.new_csrf_cookie:
        response.set_cookie(CSRF_COOKIE, visit.anonymous_csrf, httponly=True, samesite="Lax",
                            secure=secure, path="/")
    for name, value in visit.cookies:
        if value is None:
            response.del_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
        else:
            response.set_cookie(name, value, httponly=True, samesite="Lax", secure=secure,
                                path="/", max_age=visit.pages.session_days * 24 * 3600)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def form_key(posted: MultiDictProxy) -> str:
    """The key a money form was drawn with: the same form sent twice is one change."""
    key = posted.get("key", "")
    if not isinstance(key, str) or not 16 <= len(key) <= MAX_FORM_KEY_LENGTH or \
            not key.isascii():
        raise InvalidState("this form is missing its key: reload the page and send it again")
    return key


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def safe_next(value: str | None, default: str = "/dashboard") -> str:
    """A place on this site to go back to: a path, never another site."""
    if not value or len(value) > MAX_NEXT_LENGTH or not value.startswith("/") or \
            value.startswith(("//", "/\\")) or any(ord(c) < 32 for c in value):
        return default
    return value


def sign_in_url(request: web.Request) -> str:
    return "/sign-in?next=" + quote(request.path_qs, safe="")


def render(visit: Visit, template: str, context: dict[str, Any], status: int = 200
           ) -> web.Response:
    return aiohttp_jinja2.render_template(
        template, visit.request,
        {"visit": visit, "member": visit.member, "error": None, "done": None,
         "title": "Flattr", **context},
        status=status,
    )


def status_of(error: DomainError) -> int:
    return STATUS_OF_CODE.get(error.code, 400)


PageHandler = Callable[[Visit], Awaitable[web.StreamResponse]]
ErrorView = Callable[..., Awaitable[web.StreamResponse]]


def page(on_error: ErrorView | None = None) -> Callable[[PageHandler], Callable]:
    """A page handler taking a Visit. A domain error is shown on `on_error`'s page (called with
    the visit, `error` and `status`), or on a page of its own."""

    def decorate(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            visit = None
            try:
                request.app[keys.limiter_key].check_address(request)
                visit = await load_visit(request)
                response = await handler(visit)
            except SignInFirst:
                response = see_other(sign_in_url(request))
            except FormRefused as refused:
                response = render(visit, "error.html", {"message": str(refused)}, status=403)
            except DomainError as error:
                if visit is None:
                    visit = Visit(request, None, None, "", False)
                if on_error is not None and request.method == "POST":
                    response = await on_error(visit, error=str(error), status=status_of(error))
                else:
                    response = render(visit, "error.html", {"message": str(error)},
                                      status=status_of(error))
                response.headers.update(getattr(error, "headers", {}))
            if visit is None:
                return response
            return finish(visit, response)

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        return wrapped

    return decorate
