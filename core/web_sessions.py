"""The web pages' sign-ins: sessions named by a cookie's secret, and one-time sign-in links.

Only hashes of the secrets are stored. A session ends when its member signs out, when it
expires, or when the member's password changes (every other session of theirs ends). A
sign-in link is made for a member through a chat identity they linked: it works once,
within its lifetime, and starts a session.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.errors import IdentityNotLinked, InvalidCode, NotFound
from core.members import member_by_identity, parse_identity
from core.schema import sign_in_links, web_sessions

SECRET_BYTES = 32
MIN_SECRET_LENGTH = 32  # what a secret of SECRET_BYTES looks like in URL-safe base64, at least
MAX_SECRET_LENGTH = 100


@dataclass(frozen=True)
class Session:
    id: int
    member_id: int
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SignInLink:
    secret: str  # shown once, in the link; only its hash is kept
    member_id: int
    expires_at: datetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _plausible(secret: str | None) -> bool:
    return (isinstance(secret, str) and MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH
            and secret.isascii() and secret.isprintable())


async def start_session(
    conn: AsyncConnection, member_id: int, lifetime: timedelta, now: datetime | None = None
) -> tuple[str, Session]:
    """A new session for the member: the cookie's secret (shown once) and the session."""
    now = now or utc_now()
    secret = secrets.token_urlsafe(SECRET_BYTES)
    csrf_token = secrets.token_urlsafe(SECRET_BYTES)
    session_id = await conn.scalar(
        web_sessions.insert().values(
            member_id=member_id, secret_hash=_hash(secret), csrf_token=csrf_token,
            created_at=now, expires_at=now + lifetime,
        ).returning(web_sessions.c.id)
    )
    return secret, Session(session_id, member_id, csrf_token, now + lifetime)


async def session_by_secret(
    conn: AsyncConnection, secret: str | None, now: datetime | None = None
) -> Session | None:
    """The live session a cookie names, or None (unknown, ended, expired, malformed)."""
    if not _plausible(secret):
        return None
    row = (await conn.execute(
        select(web_sessions).where(
            web_sessions.c.secret_hash == _hash(secret), web_sessions.c.ended_at.is_(None),
            web_sessions.c.expires_at > (now or utc_now()),
        )
    )).first()
    if row is None:
        return None
    return Session(row.id, row.member_id, row.csrf_token, row.expires_at)


async def end_session(conn: AsyncConnection, session_id: int, now: datetime | None = None) -> None:
    await conn.execute(
        update(web_sessions)
        .where(web_sessions.c.id == session_id, web_sessions.c.ended_at.is_(None))
        .values(ended_at=now or utc_now())
    )


async def end_other_sessions(
    conn: AsyncConnection, member_id: int, keep_session_id: int | None,
    now: datetime | None = None,
) -> int:
    """End every live session of the member but one (a password changed); how many ended."""
    query = update(web_sessions).where(web_sessions.c.member_id == member_id,
                                       web_sessions.c.ended_at.is_(None))
    if keep_session_id is not None:
        query = query.where(web_sessions.c.id != keep_session_id)
    return (await conn.execute(query.values(ended_at=now or utc_now()))).rowcount


async def make_sign_in_link(
    conn: AsyncConnection, identity: str, lifetime: timedelta, now: datetime | None = None
) -> SignInLink:
    """A one-time sign-in secret for the member who linked this chat identity."""
    now = now or utc_now()
    identity = parse_identity(identity)
    try:
        member = await member_by_identity(conn, identity)
    except NotFound as error:
        raise IdentityNotLinked(
            f"{identity} is not linked to a member: create one with /bot/members first"
        ) from error
    secret = secrets.token_urlsafe(SECRET_BYTES)
    await conn.execute(
        sign_in_links.insert().values(
            member_id=member.id, secret_hash=_hash(secret), identity=identity, created_at=now,
            expires_at=now + lifetime,
        )
    )
    return SignInLink(secret, member.id, now + lifetime)


async def redeem_sign_in_link(
    conn: AsyncConnection, secret: str | None, now: datetime | None = None
) -> int:
    """The member a sign-in link is for; the link is used up. Refused when unknown, used or
    expired, and when its identity is no longer linked to that member."""
    now = now or utc_now()
    refused = InvalidCode("this sign-in link is unknown, used or expired: ask the bot "
                                "for a new one with /web")
    if not _plausible(secret):
        raise refused
    row = (await conn.execute(
        select(sign_in_links).where(sign_in_links.c.secret_hash == _hash(secret))
    )).first()
    if row is None:
        raise refused
    used = await conn.execute(
        update(sign_in_links)
        .where(sign_in_links.c.id == row.id, sign_in_links.c.used_at.is_(None),
               sign_in_links.c.expires_at > now)
        .values(used_at=now)
    )
    if used.rowcount != 1:
        raise refused
    try:
        member = await member_by_identity(conn, row.identity)
    except NotFound:
        raise refused from None
    if member.id != row.member_id:  # unlinked, and linked to someone else since
        raise refused
    return member.id
