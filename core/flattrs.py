"""Flattrs: one per (member, thing, period); taken back while the period is open."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.dialect import insert_ignoring_conflicts
from core.errors import NotFound, OwnThing, PeriodClosed, check
from core.funding.debt import refuse_if_in_debt
from core.locks import lock_period_flattrs
from core.periods import Period
from core.schema import charges, flattrs, settlements, things
from core.thing_keys import ThingKey, parse_thing_key
from core.things import Thing, get_or_create_thing

SOURCES = frozenset({"web", "extension", "automatic", "button", "discord", "telegram", "cli",
                     "subscription"})


@dataclass(frozen=True)
class Flattr:
    id: int
    member_id: int
    thing_id: int
    period: str
    created_at: datetime
    source: str


@dataclass(frozen=True)
class Flattred:
    flattr: Flattr
    thing: Thing
    created: bool  # False: the member had already flattred it this period


async def ensure_period_open_for_flattrs(
    conn: AsyncConnection, period: Period, now: datetime
) -> None:
    if period > Period.of(now):
        raise PeriodClosed(f"{period} has not begun")
    # A month at or after this one that settlement has begun closes this one too: months
    # are settled in order, so a flattr here could never be settled.
    begun = await conn.scalar(
        select(func.min(settlements.c.period)).where(settlements.c.period >= str(period))
    )
    if begun == str(period):
        raise PeriodClosed(f"{period} is being settled or has been settled")
    if begun is not None:
        raise PeriodClosed(f"{begun} is settled already: {period}, before it, is closed")


async def flattr(
    conn: AsyncConnection,
    member_id: int,
    key: ThingKey | str,
    *,
    period: Period | None = None,
    author_identity: str | None = None,
    source: str = "web",
    now: datetime | None = None,
) -> Flattred:
    """Flattr a thing in the period received (or, for admins and tests, a given period)."""
    now = now or utc_now()
    check(source in SOURCES, f"unknown flattr source {source!r}")
    period = period or Period.of(now)
    # Settlement's split of this month holds this lock exclusively: a flattr either commits
    # before the split counts the month or, checked after the lock, finds the month closed.
    await lock_period_flattrs(conn, period, exclusive=False)
    await ensure_period_open_for_flattrs(conn, period, now)
    await refuse_if_in_debt(conn, member_id)
    thing = await get_or_create_thing(conn, key, author_identity=author_identity, now=now)
    if thing.owner_id == member_id:
        raise OwnThing("you cannot flattr your own thing")
    inserted = await conn.execute(
        insert_ignoring_conflicts(conn, flattrs, ["member_id", "thing_id", "period"])
        .values(
            member_id=member_id, thing_id=thing.id, period=str(period), created_at=now,
            source=source,
        )
        .returning(*flattrs.c)
    )
    row = inserted.first()
    if row is not None:
        return Flattred(Flattr(**row._mapping), thing, created=True)
    existing = await _flattr_where(
        conn,
        flattrs.c.member_id == member_id,
        flattrs.c.thing_id == thing.id,
        flattrs.c.period == str(period),
    )
    check(existing is not None, "a conflicting flattr vanished")
    return Flattred(existing, thing, created=False)


async def take_back(
    conn: AsyncConnection, member_id: int, flattr_id: int, now: datetime | None = None
) -> Flattr:
    now = now or utc_now()
    found = await _flattr_where(conn, flattrs.c.id == flattr_id, flattrs.c.member_id == member_id)
    if found is None:
        raise NotFound(f"you have no flattr with id {flattr_id}")
    if Period.parse(found.period) != Period.of(now):
        raise PeriodClosed(f"{found.period} is closed: its flattrs can no longer be taken back")
    await lock_period_flattrs(conn, Period.parse(found.period), exclusive=False)
    await ensure_period_open_for_flattrs(conn, Period.parse(found.period), now)
    await conn.execute(delete(flattrs).where(flattrs.c.id == flattr_id))
    return found


def _listed():
    """A member's flattrs with their thing and, once settled, their funding."""
    return (
        select(
            flattrs.c.id, flattrs.c.period, flattrs.c.created_at, flattrs.c.source,
            things.c.key.label("thing"), things.c.url, things.c.owner_id,
            charges.c.status.label("funding"),
        )
        .select_from(
            flattrs.join(things, things.c.id == flattrs.c.thing_id).outerjoin(
                charges,
                (charges.c.member_id == flattrs.c.member_id)
                & (charges.c.period == flattrs.c.period),
            )
        )
    )


async def flattrs_of(
    conn: AsyncConnection, member_id: int, period: Period, limit: int = 1000
) -> list[dict]:
    """The member's flattrs of a period with their thing and, once settled, their funding."""
    rows = await conn.execute(
        _listed()
        .where(flattrs.c.member_id == member_id, flattrs.c.period == str(period))
        .order_by(flattrs.c.created_at, flattrs.c.id)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


async def take_back_thing(
    conn: AsyncConnection, member_id: int, key: ThingKey | str, now: datetime | None = None
) -> dict:
    """Take back the member's flattr of a thing in the month of `now`, as `flattrs_of` lists
    it. A flattr of it in the month just ended is too late (PeriodClosed), not unknown."""
    now = now or utc_now()
    key = parse_thing_key(key) if isinstance(key, str) else key
    period = Period.of(now)
    rows = await conn.execute(
        _listed()
        .where(flattrs.c.member_id == member_id, things.c.key == key.key,
               flattrs.c.period.in_([str(period), str(period.previous())]))
        .order_by(flattrs.c.period.desc())
        .limit(1)
    )
    found = rows.mappings().first()
    if found is None:
        raise NotFound(f"you have not flattred {key.key} this month")
    await take_back(conn, member_id, found["id"], now=now)
    return dict(found)


async def received_in(conn: AsyncConnection, owner_id: int, period: Period) -> tuple[int, int]:
    """Flattrs of a period on the member's things by others, and how many members made them."""
    row = (await conn.execute(
        select(func.count(flattrs.c.id), func.count(distinct(flattrs.c.member_id)))
        .select_from(flattrs.join(things, things.c.id == flattrs.c.thing_id))
        .where(things.c.owner_id == owner_id, flattrs.c.period == str(period),
               flattrs.c.member_id != owner_id)
    )).one()
    return row[0], row[1]


async def flattr_counts(conn: AsyncConnection, thing_id: int, period: Period) -> tuple[int, int]:
    """How often a thing was flattred this period, and in all."""
    this_period = await conn.scalar(
        select(func.count()).where(flattrs.c.thing_id == thing_id, flattrs.c.period == str(period))
    )
    total = await conn.scalar(select(func.count()).where(flattrs.c.thing_id == thing_id))
    return this_period, total


async def _flattr_where(conn: AsyncConnection, *conditions) -> Flattr | None:
    row = (await conn.execute(select(flattrs).where(*conditions))).first()
    return Flattr(**row._mapping) if row else None
