"""Bearer tokens: resolved to a Principal, with a short in-process cache on the click path."""

import time
from dataclasses import dataclass

from aiohttp import web

from core import members, tokens
from core.db import READ_ONLY
from core.errors import IdentityNotLinked, InsufficientScope, NotFound
from gateway import keys
from gateway.errors import ApiError
from gateway.principal import BOT_ACTS_WITH, Principal

IDENTITY_HEADER = "Flattr-Identity"
CACHE_LIMIT = 100_000


@dataclass
class TokenCache:
    """token hash → (Principal, expiry). Revocation through this process clears it at once."""

    seconds: float
    entries: dict[str, tuple[Principal, float]]
    revoked: set[int]  # ids revoked here or announced by another process: refused at once

    def get(self, token_hash: str) -> Principal | None:
        found = self.entries.get(token_hash)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def is_revoked(self, token_id: int) -> bool:
        return token_id in self.revoked

    def put(self, token_hash: str, principal: Principal) -> None:
        if len(self.entries) >= CACHE_LIMIT:
            self.entries.clear()
        self.entries[token_hash] = (principal, time.monotonic() + self.seconds)

    def forget_token(self, token_id: int) -> None:
        self.revoked.add(token_id)
        for token_hash in [h for h, (p, _) in self.entries.items() if p.token_id == token_id]:
            del self.entries[token_hash]


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    # aiohttp hands undecodable header bytes over as surrogates; a token is printable ASCII.
    if scheme.lower() != "bearer" or not value or not (value.isascii() and value.isprintable()):
        raise ApiError("unauthorized", "use Authorization: Bearer <token>",
                       {"WWW-Authenticate": "Bearer"})
    return value


async def authenticate(request: web.Request) -> Principal | None:
    secret = bearer(request)
    if secret is None:
        return None
    cache = request.app[keys.token_cache_key]
    token_hash = tokens.hash_token(secret)
    principal = cache.get(token_hash)
    if principal is None:
        info = await request.app[keys.token_batcher_key].submit(token_hash)
        if info is None:
            raise ApiError("unauthorized", "this token is unknown or revoked",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        principal = Principal(info.member_id, info.id, info.scopes)
        cache.put(token_hash, principal)
    if cache.is_revoked(principal.token_id):
        raise ApiError("unauthorized", "this token is unknown or revoked",
                       {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    identity = request.headers.get(IDENTITY_HEADER)
    if identity is None:
        return principal
    return await _acting_for(request, principal, identity)


async def _acting_for(request: web.Request, bot: Principal, identity: str) -> Principal:
    """A bot token acts for the member who linked this chat identity, and only as a member."""
    if "bot" not in bot.scopes:
        raise InsufficientScope(f"only a bot token may send {IDENTITY_HEADER}")
    async with request.app[keys.engine_key].connect() as conn:
        await conn.execution_options(**READ_ONLY)
        try:
            member = await members.member_by_identity(conn, identity)
        except NotFound as error:
            raise IdentityNotLinked(
                f"{identity} is not linked to a member: link it or create one with /bot/members"
            ) from error
    return Principal(member.id, bot.token_id, BOT_ACTS_WITH, acting_for=identity)
