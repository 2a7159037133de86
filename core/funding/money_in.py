"""Money in from outside and revenue moved to giving: both repay a debt first."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from core import ledger
from core.clock import utc_now
from core.errors import IdempotencyConflict, InvalidAmount
from core.funding.debt import into_member, lock_member_money
from core.money import MAX_AMOUNT_MICROS
from core.schema import fundings, ledger_transactions, postings

FUNDING_SOURCES = frozenset({"manual", "stripe"})


def positive(amount_micros: int) -> int:
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
    """Money enters the system: first to the member's debt, if they owe any, the rest to
    their giving account. One transaction, named by its funding record."""
    if source not in FUNDING_SOURCES:
        raise InvalidAmount(f"unknown funding source {source!r}")
    amount_micros = positive(amount_micros)
    now = now or utc_now()
    key = f"funding:{source}:{ledger.key_part(idempotency_key)}"
    # Taken before the key is looked up: a concurrent retry with the key waits, then finds
    # this funding; and the debt read below cannot change until this transaction ends.
    await lock_member_money(conn, member_id)
    replayed = await _replay(conn, key, member_id, amount_micros)
    if replayed is not None:
        return replayed
    entries = [ledger.Posting(await ledger.system_account(conn, "external"), -amount_micros),
               *await into_member(conn, member_id, amount_micros)]
    recorded = await ledger.record(conn, key=key, kind=f"funding.{source}",
                                   member_id=member_id, memo=memo, entries=entries, now=now)
    # Money in from outside names its record (`flattr check` proves it).
    await conn.execute(
        fundings.insert().values(
            member_id=member_id, source=source, amount_micros=amount_micros,
            transaction_id=recorded.transaction_id, created_at=now,
        )
    )
    return recorded


async def _replay(
    conn: AsyncConnection, key: str, member_id: int, amount_micros: int
) -> ledger.Recorded | None:
    """The funding of this key, when there is one: the same one again is a replay."""
    found = (await conn.execute(
        select(ledger_transactions.c.id, fundings.c.member_id, fundings.c.amount_micros)
        .select_from(ledger_transactions.outerjoin(
            fundings, fundings.c.transaction_id == ledger_transactions.c.id))
        .where(ledger_transactions.c.key == key)
    )).first()
    if found is None:
        return None
    if (found.member_id, found.amount_micros) != (member_id, amount_micros):
        raise IdempotencyConflict(f"the key {key!r} was already used for another movement")
    return ledger.Recorded(found.id, created=False)


async def transfer_revenue_to_giving(
    conn: AsyncConnection,
    member_id: int,
    amount_micros: int,
    *,
    idempotency_key: str,
    now: datetime | None = None,
) -> ledger.Recorded:
    """Revenue moved to the giving balance: like a funding, it repays the member's debt
    first and only the rest reaches giving (money owed is not spent on flattrs). The same
    key again, for the same amount, is a replay whatever the debt is now."""
    amount_micros = positive(amount_micros)
    key = f"transfer:{member_id}:{ledger.key_part(idempotency_key)}"
    await lock_member_money(conn, member_id)  # the debt read is the debt posted
    revenue = await ledger.member_account(conn, member_id, "revenue")
    done = await conn.scalar(select(ledger_transactions.c.id)
                             .where(ledger_transactions.c.key == key))
    if done is not None:
        moved = await conn.scalar(select(postings.c.amount_micros).where(
            postings.c.transaction_id == done, postings.c.account_id == revenue))
        if moved != -amount_micros:
            raise IdempotencyConflict(f"the key {key!r} was already used for another movement")
        return ledger.Recorded(done, created=False)
    return await ledger.record(
        conn, key=key, kind="transfer", member_id=member_id,
        entries=[ledger.Posting(revenue, -amount_micros),
                 *await into_member(conn, member_id, amount_micros)],
        now=now,
    )
