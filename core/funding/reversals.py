"""Money a funding's source takes back (a card refund, a dispute), once per reference.

It leaves to `external` from the member's giving balance; what giving no longer holds
(it was given away at a settlement) becomes the member's debt (core/funding/debt.py). A
funding never loses more than it brought in. A dispute the platform won is reinstated:
what it took comes back once, to the member's debt first (`reinstate`), and no longer
counts as taken from the funding.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core import ledger
from core.clock import utc_now
from core.dialect import sum_micros
from core.errors import InvalidAmount, NotFound, check
from core.funding.debt import (
    into_member,
    lock_against_settlement,
    lock_member_money,
    make_debt_account,
)
from core.schema import REVERSAL_KINDS, funding_reversals, fundings


@dataclass(frozen=True)
class Reversal:
    id: int
    funding_id: int
    member_id: int
    kind: str
    reference: str
    amount_micros: int
    debt_micros: int  # of the amount, what the giving balance could not cover
    transaction_id: int
    created_at: datetime
    reinstated_transaction_id: int | None = None  # the money came back (a dispute won)
    reinstated_at: datetime | None = None


def split_reversal(amount_micros: int, giving_micros: int) -> tuple[int, int]:
    """(from giving, into debt): giving pays what it can, the rest is owed."""
    check(amount_micros >= 0 and giving_micros >= 0, "a reversal splits non-negative amounts")
    from_giving = min(amount_micros, giving_micros)
    return from_giving, amount_micros - from_giving


async def reversed_so_far(conn: AsyncConnection, funding_id: int, kind: str | None = None) -> int:
    """What the funding's reversals (of this kind) took and still hold: not reinstated."""
    query = select(sum_micros(funding_reversals.c.amount_micros)).where(
        funding_reversals.c.funding_id == funding_id,
        funding_reversals.c.reinstated_transaction_id.is_(None))
    if kind is not None:
        query = query.where(funding_reversals.c.kind == kind)
    return await conn.scalar(query)


async def reverse(
    conn: AsyncConnection,
    funding_id: int,
    amount_micros: int,
    *,
    kind: str,
    reference: str,
    now: datetime | None = None,
) -> Reversal | None:
    """Take back up to `amount` of the funding. The same (kind, reference) again returns
    the first reversal; None when the funding has nothing left to take back."""
    if amount_micros <= 0:
        raise InvalidAmount("a reversal takes back more than zero")
    return await _reverse(conn, funding_id, lambda _taken_of_kind: amount_micros, kind=kind,
                          reference=reference, now=now)


async def reverse_up_to(
    conn: AsyncConnection,
    funding_id: int,
    total_micros: int,
    *,
    kind: str,
    reference: str,
    now: datetime | None = None,
) -> Reversal | None:
    """Take back what brings this kind's reversals of the funding up to `total` (a source's
    running total, such as Stripe's amount refunded). What was taken so far is read under
    the member's money lock: two totals applied at once take the larger one, not their sum.
    None when nothing more is owed or left."""
    return await _reverse(conn, funding_id, lambda taken_of_kind: total_micros - taken_of_kind,
                          kind=kind, reference=reference, now=now)


async def _reverse(
    conn: AsyncConnection,
    funding_id: int,
    wanted: Callable[[int], int],
    *,
    kind: str,
    reference: str,
    now: datetime | None,
) -> Reversal | None:
    """The reversal `wanted` asks for, given what this kind took of the funding so far."""
    if kind not in REVERSAL_KINDS:
        raise InvalidAmount(f"unknown reversal kind {kind!r}")
    now = now or utc_now()
    funding = (await conn.execute(select(fundings).where(fundings.c.id == funding_id))).first()
    if funding is None:
        raise NotFound(f"no funding with id {funding_id}")
    await lock_against_settlement(conn)
    # Everything below is read under this lock: a concurrent reversal of the member's
    # money has committed or waits.
    await lock_member_money(conn, funding.member_id)
    done = await reversal_by_reference(conn, kind, reference)
    if done is not None:
        return done
    left = funding.amount_micros - await reversed_so_far(conn, funding_id)
    taken = min(wanted(await reversed_so_far(conn, funding_id, kind)), left)
    if taken <= 0:
        return None
    giving = await ledger.member_account(conn, funding.member_id, "giving")
    from_giving, into_debt = split_reversal(taken, await ledger.balance(conn, giving))
    entries = [ledger.Posting(await ledger.system_account(conn, "external"), taken),
               ledger.Posting(giving, -from_giving)]
    if into_debt:
        entries.append(ledger.Posting(await make_debt_account(conn, funding.member_id),
                                      -into_debt))
    recorded = await ledger.record(
        conn, key=f"reversal:{kind}:{ledger.key_part(reference)}", kind=f"reversal.{kind}",
        member_id=funding.member_id, entries=entries, now=now,
    )
    check(recorded.created, f"reversal {kind} {reference} was recorded without its row")
    await conn.execute(funding_reversals.insert().values(
        funding_id=funding_id, member_id=funding.member_id, kind=kind, reference=reference,
        amount_micros=taken, debt_micros=into_debt, transaction_id=recorded.transaction_id,
        created_at=now,
    ))
    found = await reversal_by_reference(conn, kind, reference)
    check(found is not None, "a reversal vanished")
    return found


async def reinstate(
    conn: AsyncConnection, kind: str, reference: str, now: datetime | None = None
) -> Reversal | None:
    """The source undid a reversal (a dispute the platform won, its funds reinstated): what
    it took comes back to the member, their debt first like a funding, in one transaction,
    once. None when nothing was taken by that reference."""
    check(kind == "dispute", f"a {kind} is not reinstated")
    found = await reversal_by_reference(conn, kind, reference)
    if found is None:
        return None
    await lock_member_money(conn, found.member_id)
    found = await reversal_by_reference(conn, kind, reference)  # as it is under the lock
    check(found is not None, "a reversal vanished")
    if found.reinstated_transaction_id is not None:
        return found
    now = now or utc_now()
    entries = [ledger.Posting(await ledger.system_account(conn, "external"),
                              -found.amount_micros),
               *await into_member(conn, found.member_id, found.amount_micros)]
    recorded = await ledger.record(
        conn, key=f"reinstatement:{kind}:{ledger.key_part(reference)}",
        kind=f"reinstatement.{kind}", member_id=found.member_id, entries=entries, now=now,
    )
    check(recorded.created, f"reinstatement {kind} {reference} was recorded without its row")
    marked = await conn.execute(
        update(funding_reversals)
        .where(funding_reversals.c.id == found.id,
               funding_reversals.c.reinstated_transaction_id.is_(None))
        .values(reinstated_transaction_id=recorded.transaction_id, reinstated_at=now)
    )
    check(marked.rowcount == 1, f"reversal {found.id} was reinstated twice")
    return await reversal_by_reference(conn, kind, reference)


async def reversal_by_reference(
    conn: AsyncConnection, kind: str, reference: str
) -> Reversal | None:
    row = (await conn.execute(select(funding_reversals).where(
        funding_reversals.c.kind == kind, funding_reversals.c.reference == reference))).first()
    return Reversal(**row._mapping) if row else None
