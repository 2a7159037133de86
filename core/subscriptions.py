"""Recurring flattrs: a thing flattred every month for N months, added at settlement.

A member who owes money (a refund or a dispute left a debt) cannot subscribe, and their
subscriptions add no flattr to a month settled while they owe (core/settlement/statements.py).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.errors import InvalidState, NotFound, OwnThing
from core.funding.debt import refuse_if_in_debt
from core.periods import Period
from core.schema import subscriptions
from core.thing_keys import ThingKey
from core.things import get_or_create_thing

MAX_MONTHS = 120


@dataclass(frozen=True)
class Subscription:
    id: int
    member_id: int
    thing_id: int
    first_period: str
    last_period: str
    created_at: datetime
    cancelled_at: datetime | None


async def subscribe(
    conn: AsyncConnection,
    member_id: int,
    key: ThingKey | str,
    months: int,
    *,
    now: datetime | None = None,
) -> Subscription:
    """Flattr the thing this month and each of the following months, N months in all.
    Refused (InDebt) while the member owes money."""
    if not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise InvalidState(f"a subscription lasts 1 to {MAX_MONTHS} months")
    now = now or utc_now()
    await refuse_if_in_debt(conn, member_id, before="subscribing")
    thing = await get_or_create_thing(conn, key, now=now)
    if thing.owner_id == member_id:
        raise OwnThing("you cannot subscribe to your own thing")
    first = Period.of(now)
    subscription_id = await conn.scalar(
        subscriptions.insert()
        .values(
            member_id=member_id, thing_id=thing.id, first_period=str(first),
            last_period=str(first.plus_months(months - 1)), created_at=now,
        )
        .returning(subscriptions.c.id)
    )
    return await _subscription(conn, subscription_id, member_id)


async def cancel(
    conn: AsyncConnection, member_id: int, subscription_id: int, now: datetime | None = None
) -> Subscription:
    """Stops the subscription: no month that is not yet settled gets its flattr from it."""
    await _subscription(conn, subscription_id, member_id)
    await conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == subscription_id, subscriptions.c.cancelled_at.is_(None))
        .values(cancelled_at=now or utc_now())
    )
    return await _subscription(conn, subscription_id, member_id)


async def subscriptions_of(conn: AsyncConnection, member_id: int) -> list[Subscription]:
    rows = await conn.execute(
        select(subscriptions)
        .where(subscriptions.c.member_id == member_id)
        .order_by(subscriptions.c.id)
    )
    return [Subscription(**r._mapping) for r in rows]


async def _subscription(conn: AsyncConnection, subscription_id: int, member_id: int):
    row = (
        await conn.execute(
            select(subscriptions).where(
                subscriptions.c.id == subscription_id, subscriptions.c.member_id == member_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"you have no subscription with id {subscription_id}")
    return Subscription(**row._mapping)
