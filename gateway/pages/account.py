"""Signing up, in and out (with a password, or a bot's one-time link), and the account."""

from aiohttp import web

from core import members, web_sessions
from core.db import READ_ONLY
from core.errors import DomainError, InvalidCredentials, InvalidEmail, InvalidPassword
from gateway import keys
from gateway.pages.visits import Visit, page, render, safe_next, see_other, status_of


def _next_of(visit: Visit, posted=None) -> str:
    raw = posted.get("next") if posted is not None else visit.request.query.get("next")
    return safe_next(raw if isinstance(raw, str) else None)


def _text(posted, name: str, limit: int = 1024) -> str:
    value = posted.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


async def home(visit: Visit) -> web.StreamResponse:
    return render(visit, "home.html", {"title": "Flattr"})


async def sign_up_form(visit: Visit, *, error: str | None = None, status: int = 200,
                       handle: str = "", email: str = "") -> web.StreamResponse:
    return render(visit, "sign_up.html", {
        "title": "Sign up", "error": error, "handle": handle, "email": email,
        "next": _next_of(visit), "minimum_budget": visit.money(visit.settings.minimum_budget),
    }, status=status)


async def sign_in_form(visit: Visit, *, error: str | None = None, status: int = 200,
                       handle: str = "") -> web.StreamResponse:
    return render(visit, "sign_in.html", {"title": "Sign in", "error": error, "handle": handle,
                                          "next": _next_of(visit)}, status=status)


@page()
async def show_home(visit: Visit) -> web.StreamResponse:
    if visit.member is not None:
        return see_other("/dashboard")
    return await home(visit)


@page()
async def show_sign_up(visit: Visit) -> web.StreamResponse:
    return await sign_up_form(visit)


@page()
async def sign_up(visit: Visit) -> web.StreamResponse:
    posted = await visit.form()
    handle, email = _text(posted, "handle", 64), _text(posted, "email", 300)
    password = posted.get("password", "")
    app = visit.app
    try:
        members.handle_key(handle)
        if email and not members.EMAIL_PATTERN.fullmatch(email):
            raise InvalidEmail(f"{email!r} is not an email address")
        if not isinstance(password, str) or not 8 <= len(password) <= 1024:
            raise InvalidPassword("a password has 8 to 1024 characters")
        app[keys.sign_in_limiter_key].sign_up(visit.request)
        password_hash = await app[keys.passwords_key].hash(password)
        async with app[keys.engine_key].begin() as conn:
            made = await members.create_member(conn, handle, email=email or None,
                                               password_hash=password_hash)
    except DomainError as error:
        return await sign_up_form(visit, error=str(error), status=status_of(error),
                                  handle=handle, email=email)
    await visit.start_session(made.id)
    return see_other(_next_of(visit, posted))


@page()
async def show_sign_in(visit: Visit) -> web.StreamResponse:
    if visit.member is not None:
        return see_other(_next_of(visit))
    return await sign_in_form(visit)


@page()
async def sign_in(visit: Visit) -> web.StreamResponse:
    posted = await visit.form()
    handle, password = _text(posted, "handle", 64), posted.get("password", "")
    app = visit.app
    try:
        attempt = app[keys.sign_in_limiter_key].attempt(visit.request, handle)
        member = stored_hash = None
        async with app[keys.engine_key].connect() as conn:
            await conn.execution_options(**READ_ONLY)
            try:
                member = await members.member_by_handle(conn, handle)
                stored_hash = await members.password_hash_of(conn, member.id)
            except DomainError:
                member = None
        # Between the connections: argon2 takes a worker thread for a fifth of a second.
        if not await app[keys.passwords_key].matches(stored_hash, str(password)):
            raise InvalidCredentials("the handle or the password is wrong")
        app[keys.sign_in_limiter_key].succeeded(attempt)
    except DomainError as error:
        response = await sign_in_form(visit, error=str(error), status=status_of(error),
                                      handle=handle)
        response.headers.update(getattr(error, "headers", {}))
        return response
    await visit.start_session(member.id)
    return see_other(_next_of(visit, posted))


@page()
async def sign_out(visit: Visit) -> web.StreamResponse:
    await visit.form()
    await visit.end_session()
    return see_other("/")


@page()
async def show_sign_in_link(visit: Visit) -> web.StreamResponse:
    """A page with one button: link previews in chats fetch the link without using it up."""
    return render(visit, "sign_in_link.html", {
        "title": "Sign in from chat", "secret": visit.request.match_info["secret"]})


@page()
async def use_sign_in_link(visit: Visit) -> web.StreamResponse:
    await visit.form()
    async with visit.app[keys.engine_key].begin() as conn:
        member_id = await web_sessions.redeem_sign_in_link(
            conn, visit.request.match_info["secret"])
        has_password = await members.password_hash_of(conn, member_id) is not None
    await visit.start_session(member_id)
    return see_other("/dashboard" if has_password else "/account?welcome=1")


async def account_page(visit: Visit, *, error: str | None = None, status: int = 200,
                       done: str | None = None) -> web.StreamResponse:
    member = visit.signed_in()
    async with visit.app[keys.engine_key].connect() as conn:
        has_password = await members.password_hash_of(conn, member.id) is not None
    done = done or visit.request.query.get("done")
    return render(visit, "account.html", {
        "title": "Your account", "error": error, "has_password": has_password,
        "welcome": visit.request.query.get("welcome") == "1",
        "done": {"password": "Your password is set: other sessions were signed out.",
                 "email": "Your e-mail address is saved."}.get(done or ""),
    }, status=status)


show_account = page()(account_page)


@page(on_error=account_page)
async def set_password(visit: Visit) -> web.StreamResponse:
    member = visit.signed_in()
    posted = await visit.form()
    app = visit.app
    async with app[keys.engine_key].connect() as conn:
        stored_hash = await members.password_hash_of(conn, member.id)
    if stored_hash is not None:  # changing a password needs the one it replaces
        attempt = app[keys.sign_in_limiter_key].attempt(visit.request, member.handle)
        if not await app[keys.passwords_key].matches(stored_hash,
                                                     str(posted.get("current", ""))):
            raise InvalidCredentials("the current password is wrong")
        app[keys.sign_in_limiter_key].succeeded(attempt)
    new = posted.get("password", "")
    if new != posted.get("confirm", ""):
        raise InvalidPassword("the two new passwords differ")
    if not isinstance(new, str) or not 8 <= len(new) <= 1024:
        raise InvalidPassword("a password has 8 to 1024 characters")
    password_hash = await app[keys.passwords_key].hash(new)
    async with app[keys.engine_key].begin() as conn:
        await members.set_password_hash(conn, member.id, password_hash)
        await web_sessions.end_other_sessions(conn, member.id, visit.session.id)
    return see_other("/account?done=password")


@page(on_error=account_page)
async def set_email(visit: Visit) -> web.StreamResponse:
    await visit.act(lambda conn, member, posted: members.set_email(
        conn, member.id, _text(posted, "email", 300) or None))
    return see_other("/account?done=email")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", show_home)
    app.router.add_get("/sign-up", show_sign_up)
    app.router.add_post("/sign-up", sign_up)
    app.router.add_get("/sign-in", show_sign_in)
    app.router.add_post("/sign-in", sign_in)
    app.router.add_post("/sign-out", sign_out)
    app.router.add_get("/sign-in/link/{secret}", show_sign_in_link)
    app.router.add_post("/sign-in/link/{secret}", use_sign_in_link)
    app.router.add_get("/account", show_account)
    app.router.add_post("/account/password", set_password)
    app.router.add_post("/account/email", set_email)
