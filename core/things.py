"""Things that can be flattred, and who owns them.

The owner is kept on the thing (`owner_id`) and recomputed whenever what decides it
changes: a claim verified on its host, a chat identity linked or unlinked.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, Text, and_, distinct, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.dialect import insert_ignoring_conflicts
from core.errors import NotFound, check
from core.locks import lock_ownership
from core.members import parse_identity
from core.periods import Period
from core.schema import claims, flattrs, identities, members, things
from core.thing_keys import ThingKey, parse_thing_key


@dataclass(frozen=True)
class Thing:
    id: int
    key: str
    kind: str
    url: str | None
    author_identity: str | None
    owner_id: int | None
    owner_handle: str | None


def prefix_covers(prefix_column, path_column):
    """A prefix covers whole path segments: `/blog` covers `/blog` and `/blog/x`, not
    `/blogger` (the same rule as the click path's FLATTR_BATCH)."""
    stem = func.rtrim(prefix_column, "/")
    return or_(
        path_column == stem,
        func.substr(path_column, 1, func.length(stem) + 1) == stem + "/",
    )


def _claim_owner_of(host_column, path_column):
    """The verified claim with the longest prefix covering a page decides its owner."""
    return (
        select(claims.c.member_id)
        .where(
            claims.c.verified_at.is_not(None),
            claims.c.host == host_column,
            prefix_covers(claims.c.path_prefix, path_column),
        )
        .order_by(func.length(claims.c.path_prefix).desc())
        .limit(1)
        .scalar_subquery()
    )


async def owner_of(conn: AsyncConnection, key: ThingKey, author: str | None) -> int | None:
    if key.kind == "url":
        return await conn.scalar(
            select(_claim_owner_of(literal(key.host, String), literal(key.path, Text)))
        )
    if author is None:
        return None
    return await conn.scalar(select(identities.c.member_id).where(identities.c.identity == author))


async def get_or_create_thing(
    conn: AsyncConnection,
    key: ThingKey | str,
    *,
    author_identity: str | None = None,
    now: datetime | None = None,
) -> Thing:
    if isinstance(key, str):
        key = parse_thing_key(key)
    # Only a chat post has an author whose linked member owns it; a web page belongs to
    # whoever proved a claim on it, whatever a bot says of it.
    author = parse_identity(author_identity) if author_identity and key.kind != "url" else None
    existing = await thing_by_key(conn, key.key)
    if existing is not None and (author is None or existing.author_identity is not None):
        return existing
    if existing is not None:  # a bot tells us the author of a post we knew without one
        await lock_ownership(conn, exclusive=False)
        await conn.execute(
            update(things)
            .where(things.c.id == existing.id, things.c.author_identity.is_(None))
            .values(author_identity=author, owner_id=await owner_of(conn, key, author))
        )
        return await thing_by_key(conn, key.key)
    await conn.execute(
        insert_ignoring_conflicts(conn, things, ["key"]).values(
            key=key.key, kind=key.kind, url=key.url, host=key.host, path=key.path,
            author_identity=author, owner_id=await owner_of(conn, key, author),
            created_at=now or utc_now(),
        )
    )
    thing = await thing_by_key(conn, key.key)
    check(thing is not None, f"thing {key.key} vanished after its insert")
    return thing


_thing_columns = (
    things.c.id, things.c.key, things.c.kind, things.c.url, things.c.author_identity,
    things.c.owner_id,
    members.c.handle.label("owner_handle"),
)


async def thing_by_key(conn: AsyncConnection, key: str) -> Thing | None:
    row = (
        await conn.execute(
            select(*_thing_columns)
            .select_from(things.outerjoin(members, members.c.id == things.c.owner_id))
            .where(things.c.key == key)
        )
    ).first()
    return Thing(**row._mapping) if row else None


async def thing_by_id(conn: AsyncConnection, thing_id: int) -> Thing:
    row = (
        await conn.execute(
            select(*_thing_columns)
            .select_from(things.outerjoin(members, members.c.id == things.c.owner_id))
            .where(things.c.id == thing_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no thing with id {thing_id}")
    return Thing(**row._mapping)


async def recompute_owners_on_host(conn: AsyncConnection, host: str) -> None:
    """One statement: every page of the host gets the owner its best claim gives it."""
    await conn.execute(
        update(things)
        .where(and_(things.c.kind == "url", things.c.host == host))
        .values(owner_id=_claim_owner_of(things.c.host, things.c.path))
    )


@dataclass(frozen=True)
class Waiting:
    """What waits for a chat identity's owner: its posts flattred in a month, held for them."""

    identity: str
    period: Period
    linked: bool
    things: int
    flattrs: int


async def waiting_for_author(conn: AsyncConnection, identity: str, period: Period) -> Waiting:
    """The identity's posts without an owner flattred in the period, and their flattrs; none
    once the identity is linked (its posts are then its member's)."""
    identity = parse_identity(identity)
    linked = await conn.scalar(
        select(identities.c.id).where(identities.c.identity == identity)) is not None
    if linked:
        return Waiting(identity, period, True, 0, 0)
    row = (await conn.execute(
        select(func.count(distinct(things.c.id)), func.count(flattrs.c.id))
        .select_from(things.join(flattrs, flattrs.c.thing_id == things.c.id))
        .where(things.c.author_identity == identity, things.c.owner_id.is_(None),
               things.c.kind != "url", flattrs.c.period == str(period))
    )).one()
    return Waiting(identity, period, False, row[0], row[1])
