"""Releasing held shares to a creator as soon as they own the thing: a claim verified, or
a chat identity linked, between two settlements.

Settlement releases shares for every owner at once; this is the same rule for one owner.
The owner must be an active giver of the latest settled period, and only shares of
settled periods up to that one are released: the shares of a month still being settled
wait for the next settlement, which knows whether the owner gave in it.
"""

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core import ledger
from core.clock import utc_now
from core.periods import Period
from core.schema import charges, settlements, shares, things


async def latest_settled_period(conn: AsyncConnection) -> str | None:
    return await conn.scalar(
        select(func.max(settlements.c.period)).where(settlements.c.status == "settled")
    )


async def is_active_giver(conn: AsyncConnection, member_id: int, period: str) -> bool:
    status = await conn.scalar(
        select(charges.c.status).where(charges.c.member_id == member_id, charges.c.period == period)
    )
    return status == "funded"


async def release_held_shares_of_owner(conn: AsyncConnection, owner_id: int, reason: str) -> int:
    """Release what is held for the things this member owns now; returns the amount.

    The release is a ledger transaction of the current period, so that month's statement
    shows it, keyed by `reason` (`claim:<id>`, `identity:<id>`)."""
    settled = await latest_settled_period(conn)
    if settled is None or not await is_active_giver(conn, owner_id, settled):
        return 0
    now = utc_now()
    current = str(Period.of(now))
    resolved_by = f"release:{reason}"
    released = await conn.execute(
        update(shares)
        .where(
            shares.c.state == "held",
            shares.c.period <= settled,
            shares.c.giver_id != owner_id,
            shares.c.thing_id.in_(select(things.c.id).where(things.c.owner_id == owner_id)),
        )
        .values(
            state="released", owner_id=owner_id, resolved_by=resolved_by,
            resolved_period=current,
        )
        .returning(shares.c.amount_micros)
    )
    total = sum(released.scalars())
    if total:
        await ledger.record(
            conn,
            key=resolved_by,
            kind="release",
            period=current,
            member_id=owner_id,
            memo=f"held shares released on {reason}",
            entries=[
                ledger.Posting(await ledger.system_account(conn, "unclaimed"), -total),
                ledger.Posting(await ledger.member_account(conn, owner_id, "revenue"), total),
            ],
            now=now,
        )
    return total
