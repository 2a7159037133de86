"""Claims of web hosts (or URL prefixes on them) by creators.

Proving a claim (fetching /.well-known/flattr.txt or the page's meta tag) is the
gateway's job; here a claim is created, and marked verified once proven or by an admin.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.errors import ClaimTaken, InvalidHost, NotFound
from core.locks import lock_ownership
from core.schema import claims
from core.settlement.release import release_held_shares_of_owner
from core.things import recompute_owners_on_host
from core.urls import normalise_host


@dataclass(frozen=True)
class Claim:
    id: int
    member_id: int
    host: str
    path_prefix: str
    proof_token: str
    verified_at: datetime | None
    created_at: datetime


def normalise_prefix(prefix: str | None) -> str:
    prefix = prefix or "/"
    if not isinstance(prefix, str) or not prefix.startswith("/") or len(prefix) > 1024:
        raise InvalidHost("a path prefix starts with '/' and has at most 1024 characters")
    if any(c.isspace() or ord(c) < 32 for c in prefix) or "?" in prefix or "#" in prefix:
        raise InvalidHost("a path prefix has no spaces, query or fragment")
    return prefix


async def create_claim(
    conn: AsyncConnection,
    member_id: int,
    host: str,
    path_prefix: str | None = None,
    now: datetime | None = None,
) -> Claim:
    """Start a claim; asking again for the same host and prefix returns the same claim."""
    host, path_prefix = normalise_host(host), normalise_prefix(path_prefix)
    existing = await _claim_where(
        conn,
        claims.c.member_id == member_id,
        claims.c.host == host,
        claims.c.path_prefix == path_prefix,
    )
    if existing:
        return existing
    claim_id = await conn.scalar(
        claims.insert()
        .values(
            member_id=member_id, host=host, path_prefix=path_prefix,
            proof_token=secrets.token_urlsafe(16), created_at=now or utc_now(),
        )
        .returning(claims.c.id)
    )
    return await claim_by_id(conn, claim_id)


async def mark_verified(
    conn: AsyncConnection, claim_id: int, now: datetime | None = None
) -> Claim:
    """The claim is proven: its member owns the pages it covers, and held shares follow."""
    claim = await claim_by_id(conn, claim_id)
    if claim.verified_at is not None:
        return claim
    await lock_ownership(conn, exclusive=False)
    try:
        async with conn.begin_nested():
            await conn.execute(
                update(claims).where(claims.c.id == claim_id).values(verified_at=now or utc_now())
            )
    except IntegrityError as error:
        raise ClaimTaken(
            f"{claim.host}{claim.path_prefix} is already claimed by another member"
        ) from error
    await recompute_owners_on_host(conn, claim.host)
    await release_held_shares_of_owner(conn, claim.member_id, reason=f"claim:{claim_id}")
    return await claim_by_id(conn, claim_id)


async def claim_by_id(conn: AsyncConnection, claim_id: int) -> Claim:
    claim = await _claim_where(conn, claims.c.id == claim_id)
    if claim is None:
        raise NotFound(f"no claim with id {claim_id}")
    return claim


async def claims_of(conn: AsyncConnection, member_id: int) -> list[Claim]:
    rows = await conn.execute(
        select(claims).where(claims.c.member_id == member_id).order_by(claims.c.id)
    )
    return [Claim(**r._mapping) for r in rows]


async def _claim_where(conn: AsyncConnection, *conditions) -> Claim | None:
    row = (await conn.execute(select(claims).where(*conditions))).first()
    return Claim(**row._mapping) if row else None
