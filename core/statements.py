"""What a member sees of their money: balances, and the statement of a period."""

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.dialect import sum_micros
from core.periods import Period
from core.schema import accounts, charges, ledger_transactions, members, postings, shares, things

RECEIVING_KINDS = ("settlement.revenue", "settlement.release", "release")


async def balances_of(conn: AsyncConnection, member_id: int) -> dict[str, int]:
    """giving, revenue, and held_for_you: shares held for things the member owns, but for
    the member's own (flattred before their claim): those go back to them as giver."""
    rows = await conn.execute(
        select(accounts.c.kind, accounts.c.balance_micros).where(accounts.c.member_id == member_id)
    )
    balances = {kind: amount for kind, amount in rows}
    balances["held_for_you"] = await conn.scalar(
        select(sum_micros(shares.c.amount_micros))
        .select_from(shares.join(things, things.c.id == shares.c.thing_id))
        .where(shares.c.state == "held", things.c.owner_id == member_id,
               shares.c.giver_id != member_id)
    )
    return balances


async def statement_of(conn: AsyncConnection, member_id: int, period: Period) -> dict:
    """What was charged, the fee, each share and where it went, and what was received."""
    charge = (
        await conn.execute(
            select(charges).where(charges.c.member_id == member_id, charges.c.period == str(period))
        )
    ).mappings().first()
    owner = members.alias("owner")
    given = await conn.execute(
        select(
            things.c.key.label("thing"), shares.c.amount_micros, shares.c.state,
            owner.c.handle.label("to"), shares.c.resolved_period,
        )
        .select_from(
            shares.join(things, things.c.id == shares.c.thing_id).outerjoin(
                owner, owner.c.id == shares.c.owner_id
            )
        )
        .where(shares.c.giver_id == member_id, shares.c.period == str(period))
        .order_by(shares.c.flattr_id)
    )
    revenue = select(accounts.c.id).where(
        accounts.c.member_id == member_id, accounts.c.kind == "revenue"
    )
    received = await conn.execute(
        select(ledger_transactions.c.kind, sum_micros(postings.c.amount_micros))
        .select_from(
            postings.join(
                ledger_transactions,
                and_(
                    ledger_transactions.c.id == postings.c.transaction_id,
                    ledger_transactions.c.period == str(period),
                    ledger_transactions.c.kind.in_(RECEIVING_KINDS),
                ),
            )
        )
        .where(postings.c.account_id.in_(revenue.scalar_subquery()))
        .group_by(ledger_transactions.c.kind)
    )
    received_by_kind = {kind: total for kind, total in received}
    return {
        "period": str(period),
        "status": charge["status"] if charge else "not_charged",
        "flattr_count": charge["flattr_count"] if charge else 0,
        "charged_micros": charge["charge_micros"] if charge else 0,
        "fee_micros": charge["fee_micros"] if charge else 0,
        "net_micros": charge["net_micros"] if charge else 0,
        "shares": [dict(r) for r in given.mappings()],
        "received_micros": sum(received_by_kind.values()),
        "received_shares_micros": received_by_kind.get("settlement.revenue", 0),
        "received_released_micros": (received_by_kind.get("settlement.release", 0)
                                     + received_by_kind.get("release", 0)),
    }
