"""What a member sees of their money in: fundings, what was taken back, what they owe."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.dialect import sum_micros
from core.funding.debt import owed_by
from core.schema import funding_reversals, fundings, stripe_checkouts

MAX_LISTED = 100


async def funding_history(conn: AsyncConnection, member_id: int) -> dict:
    """The newest fundings (each with what was taken back of it), open card checkouts and
    the debt: `*_micros` amounts, as the gateway's `with_amounts` shows them."""
    taken = (
        select(funding_reversals.c.funding_id,
               sum_micros(funding_reversals.c.amount_micros).label("total"))
        .where(funding_reversals.c.member_id == member_id,
               funding_reversals.c.reinstated_transaction_id.is_(None))
        .group_by(funding_reversals.c.funding_id)
        .subquery()
    )
    rows = await conn.execute(
        select(fundings.c.id, fundings.c.source, fundings.c.amount_micros,
               fundings.c.created_at, taken.c.total)
        .outerjoin(taken, taken.c.funding_id == fundings.c.id)
        .where(fundings.c.member_id == member_id)
        .order_by(fundings.c.id.desc())
        .limit(MAX_LISTED)
    )
    checkouts = await conn.execute(
        select(stripe_checkouts.c.session_id, stripe_checkouts.c.amount_micros,
               stripe_checkouts.c.fee_micros, stripe_checkouts.c.status,
               stripe_checkouts.c.created_at)
        .where(stripe_checkouts.c.member_id == member_id, stripe_checkouts.c.status == "open")
        .order_by(stripe_checkouts.c.created_at.desc())
        .limit(MAX_LISTED)
    )
    return {
        "fundings": [{"id": r.id, "source": r.source, "amount_micros": r.amount_micros,
                      "taken_back_micros": r.total or 0, "created_at": r.created_at}
                     for r in rows],
        "open_checkouts": [dict(r._mapping) for r in checkouts],
        "debt_micros": await owed_by(conn, member_id),
    }
