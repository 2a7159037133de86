"""Members, their accounts, budgets and chat identities."""

import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.errors import (
    BudgetBelowMinimum,
    HandleTaken,
    IdentityTaken,
    InvalidAmount,
    InvalidEmail,
    InvalidHandle,
    InvalidIdentity,
    InvalidPassword,
    NotFound,
)
from core.locks import lock_ownership
from core.money import MAX_AMOUNT_MICROS, format_amount
from core.schema import MEMBER_ACCOUNT_KINDS, accounts, budgets, identities, members, things
from core.settings import Settings
from core.settlement.release import release_held_shares_of_owner

HANDLE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,31}")
RESERVED_HANDLES = frozenset({"admin", "api", "me", "flattr", "system", "root", "support"})
IDENTITY_PATTERN = re.compile(r"(discord|telegram):([1-9][0-9]{0,19})")
EMAIL_PATTERN = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,63}")

_hasher = PasswordHasher()


@dataclass(frozen=True)
class Member:
    id: int
    handle: str
    email: str | None
    budget_micros: int | None
    is_admin: bool
    created_at: datetime


def handle_key(handle: str) -> str:
    """Handles are unique regardless of case: "Alice" and "alice" are the same member."""
    if not isinstance(handle, str) or not HANDLE_PATTERN.fullmatch(handle):
        raise InvalidHandle(
            "a handle is 2 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    if handle.lower() in RESERVED_HANDLES:
        raise InvalidHandle(f"the handle {handle!r} is reserved")
    return handle.lower()


def parse_identity(text: str) -> str:
    """A chat identity: `discord:<user id>` or `telegram:<user id>`."""
    if not isinstance(text, str) or not IDENTITY_PATTERN.fullmatch(text.strip()):
        raise InvalidIdentity("a chat identity looks like discord:1234 or telegram:1234")
    return text.strip()


def hash_password(password: str) -> str:
    if not isinstance(password, str) or not 8 <= len(password) <= 1024:
        raise InvalidPassword("a password has 8 to 1024 characters")
    return _hasher.hash(password)


_UNKNOWN_MEMBER_HASH = _hasher.hash("no member has this password")


def password_matches(password_hash: str | None, password: str) -> bool:
    """Checking an unknown member costs as long as a known one: no handle oracle by timing."""
    try:
        matched = _hasher.verify(password_hash or _UNKNOWN_MEMBER_HASH, password)
    except (VerifyMismatchError, InvalidHashError):
        return False
    return matched and password_hash is not None


async def create_member(
    conn: AsyncConnection,
    handle: str,
    *,
    email: str | None = None,
    password: str | None = None,
    password_hash: str | None = None,
    is_admin: bool = False,
    now: datetime | None = None,
) -> Member:
    """A new member; `password_hash` is `hash_password`'s result when the caller hashed the
    password already (the gateway does, off its event loop)."""
    key = handle_key(handle)
    if email is not None and not EMAIL_PATTERN.fullmatch(email):
        raise InvalidEmail(f"{email!r} is not an email address")
    if password is not None:
        password_hash = hash_password(password)
    if await conn.scalar(select(members.c.id).where(members.c.handle_key == key)):
        raise HandleTaken(f"the handle {handle!r} is taken")
    try:
        async with conn.begin_nested():
            member_id = await conn.scalar(
                members.insert()
                .values(
                    handle=handle, handle_key=key, email=email, password_hash=password_hash,
                    is_admin=is_admin, created_at=now or utc_now(),
                )
                .returning(members.c.id)
            )
    except IntegrityError as error:  # a concurrent sign-up took it between check and insert
        raise HandleTaken(f"the handle {handle!r} is taken") from error
    await conn.execute(
        accounts.insert(), [{"member_id": member_id, "kind": k} for k in MEMBER_ACCOUNT_KINDS]
    )
    return await member_by_id(conn, member_id)


def _member(row) -> Member:
    return Member(
        id=row.id, handle=row.handle, email=row.email, budget_micros=row.budget_micros,
        is_admin=row.is_admin, created_at=row.created_at,
    )


async def member_by_id(conn: AsyncConnection, member_id: int) -> Member:
    row = (await conn.execute(select(members).where(members.c.id == member_id))).first()
    if row is None:
        raise NotFound(f"no member with id {member_id}")
    return _member(row)


async def member_by_handle(conn: AsyncConnection, handle: str) -> Member:
    row = (
        await conn.execute(select(members).where(members.c.handle_key == handle.lower()))
    ).first()
    if row is None:
        raise NotFound(f"no member with the handle {handle!r}")
    return _member(row)


async def password_hash_of(conn: AsyncConnection, member_id: int) -> str | None:
    return await conn.scalar(select(members.c.password_hash).where(members.c.id == member_id))


async def set_budget(
    conn: AsyncConnection, member_id: int, amount_micros: int, settings: Settings,
    now: datetime | None = None,
) -> Member:
    """The budget from now on; the months already ended keep the budget they had."""
    if amount_micros < settings.minimum_budget:
        raise BudgetBelowMinimum(
            f"the monthly budget is at least {format_amount(settings.minimum_budget)} "
            f"{settings.currency}"
        )
    if amount_micros > MAX_AMOUNT_MICROS:
        raise InvalidAmount("that budget is too large")
    result = await conn.execute(
        update(members).where(members.c.id == member_id).values(budget_micros=amount_micros)
    )
    if result.rowcount == 0:
        raise NotFound(f"no member with id {member_id}")
    await conn.execute(
        budgets.insert().values(member_id=member_id, budget_micros=amount_micros,
                                set_at=now or utc_now())
    )
    return await member_by_id(conn, member_id)


async def link_identity(
    conn: AsyncConnection, member_id: int, identity: str, now: datetime | None = None
) -> int:
    """Link a chat identity; the member becomes the owner of that identity's chat posts."""
    identity = parse_identity(identity)
    owner = await conn.scalar(
        select(identities.c.member_id).where(identities.c.identity == identity)
    )
    if owner == member_id:
        return await conn.scalar(
            select(identities.c.id).where(identities.c.identity == identity)
        )
    if owner is not None:
        raise IdentityTaken(f"{identity} is linked to another member")
    await lock_ownership(conn, exclusive=False)
    try:
        async with conn.begin_nested():
            identity_id = await conn.scalar(
                identities.insert()
                .values(member_id=member_id, identity=identity, created_at=now or utc_now())
                .returning(identities.c.id)
            )
    except IntegrityError as error:
        raise IdentityTaken(f"{identity} is linked to another member") from error
    await conn.execute(
        update(things)
        .where(things.c.author_identity == identity, things.c.kind != "url")
        .values(owner_id=member_id)
    )
    await release_held_shares_of_owner(conn, member_id, reason=f"identity:{identity_id}")
    return identity_id


async def unlink_identity(conn: AsyncConnection, member_id: int, identity_id: int) -> None:
    identity = await conn.scalar(
        select(identities.c.identity).where(
            identities.c.id == identity_id, identities.c.member_id == member_id
        )
    )
    if identity is None:
        raise NotFound(f"no linked identity with id {identity_id}")
    await lock_ownership(conn, exclusive=False)
    await conn.execute(delete(identities).where(identities.c.id == identity_id))
    await conn.execute(
        update(things)
        .where(things.c.author_identity == identity, things.c.kind != "url")
        .values(owner_id=None)
    )


async def member_by_identity(conn: AsyncConnection, identity: str) -> Member:
    identity = parse_identity(identity)
    member_id = await conn.scalar(
        select(identities.c.member_id).where(identities.c.identity == identity)
    )
    if member_id is None:
        raise NotFound(f"{identity} is not linked to a member")
    return await member_by_id(conn, member_id)


async def identities_of(conn: AsyncConnection, member_id: int) -> list[dict]:
    rows = await conn.execute(
        select(identities.c.id, identities.c.identity, identities.c.created_at)
        .where(identities.c.member_id == member_id)
        .order_by(identities.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def identity_id_of(conn: AsyncConnection, member_id: int, identity: str) -> int | None:
    """The id of `identity` when it is linked to this member."""
    return await conn.scalar(select(identities.c.id).where(
        identities.c.member_id == member_id, identities.c.identity == identity))


async def member_count(conn: AsyncConnection) -> int:
    return await conn.scalar(select(func.count()).select_from(members))


async def set_password_hash(conn: AsyncConnection, member_id: int, password_hash: str) -> None:
    """A new password (`hash_password`'s result: the gateway hashes off its event loop)."""
    result = await conn.execute(
        update(members).where(members.c.id == member_id).values(password_hash=password_hash)
    )
    if result.rowcount == 0:
        raise NotFound(f"no member with id {member_id}")


async def set_email(conn: AsyncConnection, member_id: int, email: str | None) -> Member:
    """The member's e-mail address (None: none)."""
    if email is not None and (len(email) > 254 or not EMAIL_PATTERN.fullmatch(email)):
        raise InvalidEmail(f"{email!r} is not an email address")
    result = await conn.execute(
        update(members).where(members.c.id == member_id).values(email=email)
    )
    if result.rowcount == 0:
        raise NotFound(f"no member with id {member_id}")
    return await member_by_id(conn, member_id)
