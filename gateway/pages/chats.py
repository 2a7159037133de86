"""Linked chat accounts (a link code for the bots, unlinking) and API tokens."""

from aiohttp import web

from core import link_codes, members, tokens
from core.errors import InvalidScope
from gateway import keys
from gateway.handlers.tokens import revoke_token
from gateway.pages.visits import Visit, page, render, see_other
from gateway.present import when

MEMBER_TOKEN_SCOPES = ("read", "flattr", "account")


async def chats_page(visit: Visit, *, error: str | None = None, status: int = 200,
                     code: str | None = None, expires_at=None) -> web.StreamResponse:
    member = visit.signed_in()
    async with visit.app[keys.engine_key].connect() as conn:
        linked = await members.identities_of(conn, member.id)
    return render(visit, "chats.html", {
        "title": "Linked chats", "error": error, "identities": linked, "code": code,
        "expires_at": when(expires_at), "when": when,
        "done": "The chat account is unlinked." if visit.request.query.get("done") else None,
    }, status=status)


show_chats = page()(chats_page)


@page(on_error=chats_page)
async def make_code(visit: Visit) -> web.StreamResponse:
    code, expires_at = await visit.act(
        lambda conn, member, _: link_codes.make_link_code(conn, member.id))
    return await chats_page(visit, code=code, expires_at=expires_at)


@page(on_error=chats_page)
async def unlink(visit: Visit) -> web.StreamResponse:
    identity_id = visit.call().path_id()
    await visit.act(lambda conn, member, _: members.unlink_identity(conn, member.id,
                                                                     identity_id))
    return see_other("/chats?done=unlinked")


async def tokens_page(visit: Visit, *, error: str | None = None, status: int = 200,
                      issued: tokens.IssuedToken | None = None) -> web.StreamResponse:
    member = visit.signed_in()
    async with visit.app[keys.engine_key].connect() as conn:
        live = await tokens.tokens_of(conn, member.id)
    return render(visit, "tokens.html", {
        "title": "API tokens", "error": error, "tokens": live, "issued": issued,
        "scopes": MEMBER_TOKEN_SCOPES, "when": when,
        "done": "The token is revoked." if visit.request.query.get("done") else None,
    }, status=status)


show_tokens = page()(tokens_page)


@page(on_error=tokens_page)
async def make_token(visit: Visit) -> web.StreamResponse:
    member = visit.signed_in()
    posted = await visit.form()
    chosen = [s for s in posted.getall("scope", []) if isinstance(s, str)]
    if not set(chosen) <= set(MEMBER_TOKEN_SCOPES):
        raise InvalidScope(f"a token made here has some of {', '.join(MEMBER_TOKEN_SCOPES)}")
    label = str(posted.get("label", "")).strip() or None
    async with visit.app[keys.engine_key].begin() as conn:
        issued = await tokens.issue_token(conn, member.id, tokens.parse_scopes(chosen),
                                          label=label)
    return await tokens_page(visit, issued=issued)


@page(on_error=tokens_page)
async def revoke(visit: Visit) -> web.StreamResponse:
    """The API's revocation: the token cache of every gateway process forgets it at once."""
    await visit.act(lambda conn, _member, _form: revoke_token(visit.call(conn)))
    return see_other("/tokens?done=revoked")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/chats", show_chats)
    app.router.add_post("/chats/link-code", make_code)
    app.router.add_post("/chats/{id}/unlink", unlink)
    app.router.add_get("/tokens", show_tokens)
    app.router.add_post("/tokens", make_token)
    app.router.add_post("/tokens/{id}/revoke", revoke)
