"""The manual source: an admin (or the demo) credits a member's giving balance directly.

Nothing to quote or to wait for: the credit is the confirmation. Kept for the demo and
for money that arrives by other means (a bank transfer an admin has seen).
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from core import ledger
from core.funding.money_in import credit

NAME = "manual"


async def credit_manually(
    conn: AsyncConnection, member_id: int, amount_micros: int, *, idempotency_key: str,
    memo: str | None = None, now: datetime | None = None,
) -> ledger.Recorded:
    return await credit(conn, member_id, amount_micros, idempotency_key=idempotency_key,
                        source=NAME, memo=memo, now=now)
