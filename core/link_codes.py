"""One-time codes that link a chat identity to a member: made on the web, redeemed in chat."""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.errors import InvalidCode
from core.members import link_identity
from core.schema import link_codes

LIFETIME = timedelta(minutes=10)
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: codes are typed by hand
LENGTH = 8


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace("-", "").encode()).hexdigest()


async def make_link_code(
    conn: AsyncConnection, member_id: int, now: datetime | None = None
) -> tuple[str, datetime]:
    now = now or utc_now()
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    code = f"{raw[:4]}-{raw[4:]}"
    expires_at = now + LIFETIME
    await conn.execute(
        link_codes.insert().values(
            member_id=member_id, code_hash=_hash(code), expires_at=expires_at, created_at=now
        )
    )
    return code, expires_at


async def redeem_link_code(
    conn: AsyncConnection, code: str, identity: str, now: datetime | None = None
) -> tuple[int, int]:
    """Link the identity to the code's member; a code works once, within ten minutes."""
    now = now or utc_now()
    if not isinstance(code, str) or not 4 <= len(code) <= 20:
        raise InvalidCode("that link code is not valid")
    row = (
        await conn.execute(select(link_codes).where(link_codes.c.code_hash == _hash(code)))
    ).first()
    expires_at = row.expires_at if row else None
    if expires_at is not None and expires_at.tzinfo is None:  # SQLite keeps naive UTC
        expires_at = expires_at.replace(tzinfo=now.tzinfo)
    if row is None or row.used_at is not None or expires_at <= now:
        raise InvalidCode("that link code is unknown, used or expired: make a new one")
    used = await conn.execute(
        update(link_codes)
        .where(link_codes.c.id == row.id, link_codes.c.used_at.is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:
        raise InvalidCode("that link code was just used")
    identity_id = await link_identity(conn, row.member_id, identity, now=now)
    return row.member_id, identity_id
