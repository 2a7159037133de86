"""API tokens: made with a handle and password, listed, revoked."""

from core import members, tokens
from core.db import READ_ONLY
from core.errors import DomainError, InvalidCredentials
from gateway import keys, revocations
from gateway.api import Api, Call
from gateway.present import when
from gateway.schemas import NewToken

api = Api()


def token_json(info: tokens.TokenInfo) -> dict:
    return {"id": info.id, "scopes": sorted(info.scopes), "label": info.label,
            "created_at": when(info.created_at)}


@api.route("POST", "/tokens", summary="Make a token from a handle and password (shown once)",
           scope=None, body=NewToken, status=201, own_connections=True,
           errors=("invalid_credentials", "invalid_scope", "insufficient_scope",
                   "rate_limited"))
async def create_token(call: Call):
    body: NewToken = call.body
    app = call.request.app
    scopes = tokens.parse_scopes(body.scopes)
    attempt = app[keys.sign_in_limiter_key].attempt(call.request, body.handle)
    async with app[keys.engine_key].connect() as conn:
        await conn.execution_options(**READ_ONLY)
        try:
            member = await members.member_by_handle(conn, body.handle)
        except DomainError:
            member = None
        stored_hash = await members.password_hash_of(conn, member.id) if member else None
    # Between the connections: argon2 takes a worker thread for a fifth of a second.
    if not await app[keys.passwords_key].matches(stored_hash, body.password):
        raise InvalidCredentials("the handle or the password is wrong")
    app[keys.sign_in_limiter_key].succeeded(attempt)
    async with app[keys.engine_key].begin() as conn:
        issued = await tokens.issue_token(conn, member.id, scopes, label=body.label,
                                          may_grant_privileged=member.is_admin)
    return {"token": issued.token, **token_json(issued.info)}


@api.route("GET", "/tokens", summary="The member's live tokens", scope="account")
async def list_tokens(call: Call):
    return {"tokens": [token_json(t) for t in await tokens.tokens_of(call.conn, call.member_id)]}


@api.route("DELETE", "/tokens/{id}", summary="Revoke a token (any token may revoke itself)",
           scope="read", errors=("not_found",))
async def revoke_token(call: Call):
    token_id = call.path_id()
    if token_id != call.principal.token_id or call.principal.acting_for:
        call.principal.require("account")
    revoked = await tokens.revoke_token(call.conn, call.member_id, token_id)
    call.request.app[keys.token_cache_key].forget_token(token_id)
    await revocations.announce(call.request.app[keys.redis_key],
                               call.request.app[keys.gateway_settings_key].redis_namespace,
                               token_id)
    return {"revoked": token_json(revoked)}
