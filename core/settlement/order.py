"""Months are settled in order: held shares are released and returned, and givers'
balances drawn, month after month. A month is refused while an earlier month that owes
money is not settled (it has flattrs, or a subscription gives it one), and once a later
month has been settled or is being settled.
"""

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import PeriodOutOfOrder
from core.periods import Period
from core.schema import flattrs, settlements, subscriptions


async def ensure_settled_in_order(conn: AsyncConnection, period: Period) -> None:
    later = await conn.scalar(
        select(func.min(settlements.c.period)).where(settlements.c.period > str(period))
    )
    if later is not None:
        raise PeriodOutOfOrder(f"{later} is settled already: {period}, before it, no longer can be")
    unsettled = await first_unsettled_month_before(conn, period)
    if unsettled is not None:
        raise PeriodOutOfOrder(
            f"{unsettled} has flattrs and is not settled: settle it before {period}"
        )


async def first_unsettled_month_before(conn: AsyncConnection, period: Period) -> Period | None:
    """The earliest month before `period` that has (or will be given) flattrs and is not
    settled. One probe of an index per month since the first flattr or subscription."""
    first = await _first_month_with_flattrs_before(conn, period)
    if first is None:
        return None
    settled = set(
        (await conn.execute(
            select(settlements.c.period).where(
                settlements.c.period >= str(first), settlements.c.period < str(period),
                settlements.c.status == "settled",
            )
        )).scalars()
    )
    month = first
    while month < period:
        if str(month) not in settled and await _owes(conn, month):
            return month
        month = month.next()
    return None


async def _first_month_with_flattrs_before(conn: AsyncConnection, period: Period) -> Period | None:
    earliest = [
        await conn.scalar(select(func.min(flattrs.c.period)).where(flattrs.c.period < str(period))),
        await conn.scalar(
            select(func.min(subscriptions.c.first_period))
            .where(subscriptions.c.first_period < str(period))
        ),
    ]
    found = [Period.parse(p) for p in earliest if p is not None]
    return min(found, default=None)


async def _owes(conn: AsyncConnection, month: Period) -> bool:
    has_flattrs = await conn.scalar(
        select(flattrs.c.id).where(flattrs.c.period == str(month)).limit(1)
    )
    if has_flattrs is not None:
        return True
    subscribed = await conn.scalar(
        select(subscriptions.c.id)
        .where(
            subscriptions.c.first_period <= str(month),
            subscriptions.c.last_period >= str(month),
            or_(subscriptions.c.cancelled_at.is_(None),
                subscriptions.c.cancelled_at >= month.ends_at),
        )
        .limit(1)
    )
    return subscribed is not None
