"""Money in and between a member's own accounts: credits, and revenue moved to giving."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from core import ledger
from core.clock import utc_now
from core.errors import InvalidAmount
from core.money import MAX_AMOUNT_MICROS
from core.schema import fundings

FUNDING_SOURCES = frozenset({"manual"})


def _positive(amount_micros: int) -> int:
    if not 0 < amount_micros <= MAX_AMOUNT_MICROS:
        raise InvalidAmount("the amount must be above zero")
    return amount_micros


async def credit(
    conn: AsyncConnection,
    member_id: int,
    amount_micros: int,
    *,
    idempotency_key: str,
    source: str = "manual",
    memo: str | None = None,
    now: datetime | None = None,
) -> ledger.Recorded:
    """Money enters the system into the member's giving account (admin credit for now)."""
    if source not in FUNDING_SOURCES:
        raise InvalidAmount(f"unknown funding source {source!r}")
    amount_micros = _positive(amount_micros)
    now = now or utc_now()
    recorded = await ledger.record(
        conn,
        key=f"funding:{source}:{ledger.key_part(idempotency_key)}",
        kind=f"funding.{source}",
        member_id=member_id,
        memo=memo,
        entries=[
            ledger.Posting(await ledger.system_account(conn, "external"), -amount_micros),
            ledger.Posting(await ledger.member_account(conn, member_id, "giving"), amount_micros),
        ],
        now=now,
    )
    if recorded.created:  # money in from outside names its record (`flattr check` proves it)
        await conn.execute(
            fundings.insert().values(
                member_id=member_id, source=source, amount_micros=amount_micros,
                transaction_id=recorded.transaction_id, created_at=now,
            )
        )
    return recorded


async def transfer_revenue_to_giving(
    conn: AsyncConnection,
    member_id: int,
    amount_micros: int,
    *,
    idempotency_key: str,
    now: datetime | None = None,
) -> ledger.Recorded:
    amount_micros = _positive(amount_micros)
    return await ledger.record(
        conn,
        key=f"transfer:{member_id}:{ledger.key_part(idempotency_key)}",
        kind="transfer",
        member_id=member_id,
        entries=[
            ledger.Posting(await ledger.member_account(conn, member_id, "revenue"), -amount_micros),
            ledger.Posting(await ledger.member_account(conn, member_id, "giving"), amount_micros),
        ],
        now=now,
    )
