"""API tokens: random, shown once, stored only as a hash, scoped and revocable."""

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.errors import InsufficientScope, InvalidScope, NotFound
from core.schema import api_tokens

SCOPES = ("read", "flattr", "account", "admin", "bot")
PRIVILEGED_SCOPES = frozenset({"admin", "bot"})
TOKEN_PREFIX = "flattr_"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    member_id: int
    scopes: frozenset[str]
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once; only its hash is kept
    info: TokenInfo


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (unlike passwords).
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(scopes: list[str] | str) -> frozenset[str]:
    names = scopes.split(",") if isinstance(scopes, str) else scopes
    chosen = frozenset(s.strip() for s in names if s and s.strip())
    unknown = chosen - set(SCOPES)
    if unknown or not chosen:
        raise InvalidScope(f"scopes are some of {', '.join(SCOPES)}; got {sorted(unknown) or []}")
    return chosen


async def issue_token(
    conn: AsyncConnection,
    member_id: int,
    scopes: frozenset[str],
    *,
    label: str | None = None,
    may_grant_privileged: bool = False,
    now: datetime | None = None,
) -> IssuedToken:
    if scopes & PRIVILEGED_SCOPES and not may_grant_privileged:
        raise InsufficientScope("only an admin can grant the admin or bot scope")
    if label is not None and len(label) > 100:
        raise InvalidScope("a token label has at most 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = await conn.scalar(
        api_tokens.insert()
        .values(
            member_id=member_id, token_hash=hash_token(token), scopes=" ".join(sorted(scopes)),
            label=label, created_at=now or utc_now(),
        )
        .returning(api_tokens.c.id)
    )
    return IssuedToken(token, await _token(conn, api_tokens.c.id == token_id))


async def live_tokens_by_hash(
    conn: AsyncConnection, token_hashes: Collection[str]
) -> dict[str, TokenInfo]:
    """The live tokens among these hashes, by hash: unknown and revoked ones are absent."""
    if not token_hashes:
        return {}
    rows = await conn.execute(
        select(api_tokens).where(api_tokens.c.token_hash.in_(set(token_hashes)),
                                 api_tokens.c.revoked_at.is_(None))
    )
    return {row.token_hash: _info(row) for row in rows}


async def tokens_of(conn: AsyncConnection, member_id: int) -> list[TokenInfo]:
    rows = await conn.execute(
        select(api_tokens)
        .where(api_tokens.c.member_id == member_id, api_tokens.c.revoked_at.is_(None))
        .order_by(api_tokens.c.id)
    )
    return [_info(r) for r in rows]


async def revoke_token(
    conn: AsyncConnection, member_id: int, token_id: int, now: datetime | None = None
) -> TokenInfo:
    found = await _token(conn, api_tokens.c.id == token_id, api_tokens.c.member_id == member_id)
    if found is None or found.revoked_at is not None:
        raise NotFound(f"you have no live token with id {token_id}")
    await conn.execute(
        update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now or utc_now())
    )
    return await _token(conn, api_tokens.c.id == token_id)


async def _token(conn: AsyncConnection, *conditions) -> TokenInfo | None:
    row = (await conn.execute(select(api_tokens).where(*conditions))).first()
    return _info(row) if row else None


def _info(row) -> TokenInfo:
    return TokenInfo(
        id=row.id, member_id=row.member_id, scopes=frozenset(row.scopes.split()),
        label=row.label, created_at=row.created_at, revoked_at=row.revoked_at,
    )

