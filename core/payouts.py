"""Payouts of revenue: requested by the creator, sent to the bank, then paid or failed.

Requested money waits in the `payouts` system account; sent in a credit-transfer batch
(core/payout_batches.py) it waits in `payouts_sent`; paid, it leaves to `external`; failed,
it goes back to the creator's revenue. An admin may also mark a requested payout paid or
failed directly, never a sent one: that is the bank's answer. Each change is a ledger
transaction keyed by the payout and its state. Payouts are whole cents: the rest of a
request stays in revenue.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core import ledger
from core.clock import utc_now
from core.errors import (
    BelowPayoutThreshold,
    InsufficientFunds,
    InvalidState,
    NotFound,
    PayoutWithTheBank,
    check,
)
from core.funding.debt import refuse_if_in_debt
from core.money import format_amount, whole_cents
from core.schema import payouts
from core.settings import Settings


@dataclass(frozen=True)
class Payout:
    id: int
    member_id: int
    amount_micros: int
    status: str
    created_at: datetime
    resolved_at: datetime | None
    batch_id: int | None = None

# Where a payout's money waits in each unresolved state.
WAITING_IN = {"requested": "payouts", "sent": "payouts_sent"}


async def request_payout(
    conn: AsyncConnection,
    member_id: int,
    settings: Settings,
    *,
    amount_micros: int | None = None,
    now: datetime | None = None,
) -> Payout:
    """Ask for `amount` (default: all revenue), rounded down to whole cents.

    Refused (InDebt, 402 `debt_outstanding`) while the member owes money after a refund or
    a dispute: revenue does not leave the platform before the debt is repaid. Repaying it
    from revenue is the member's choice, a transfer to giving (which repays the debt first,
    core/funding/money_in.py); a payout never takes it silently."""
    now = now or utc_now()
    await refuse_if_in_debt(conn, member_id, repay="add funds or move revenue to giving",
                            before="asking for a payout")
    revenue_account = await ledger.member_account(conn, member_id, "revenue")
    available = await ledger.balance(conn, revenue_account)
    wanted = available if amount_micros is None else amount_micros
    if wanted > available:
        raise InsufficientFunds(f"your revenue is {format_amount(available)} {settings.currency}")
    amount = whole_cents(wanted)
    if amount < settings.payout_threshold:
        raise BelowPayoutThreshold(
            f"a payout is at least {format_amount(settings.payout_threshold)} "
            f"{settings.currency}"
        )
    payout_id = await conn.scalar(
        payouts.insert()
        .values(member_id=member_id, amount_micros=amount, status="requested", created_at=now)
        .returning(payouts.c.id)
    )
    await ledger.record(
        conn,
        key=f"payout:{payout_id}:request",
        kind="payout.request",
        member_id=member_id,
        entries=[
            ledger.Posting(revenue_account, -amount),
            ledger.Posting(await ledger.system_account(conn, "payouts"), amount),
        ],
        now=now,
    )
    return await payout_by_id(conn, payout_id)


async def resolve_payout(
    conn: AsyncConnection, payout_id: int, outcome: str, now: datetime | None = None, *,
    bank_answer: bool = False,
) -> Payout:
    """A requested payout is marked `paid` or `failed` by an admin; one sent in a batch
    only by the bank's answer (`bank_answer`, core/payout_batches.py): the bank has it and
    may still pay it, so an admin marking it failed would pay it twice. Marking it again
    the same way is a no-op."""
    if outcome not in ("paid", "failed"):
        raise InvalidState("a payout is marked paid or failed")
    now = now or utc_now()
    # Locked until this transaction ends: a concurrent resolution waits, then reads the
    # outcome this one wrote, so a payout is never both paid and failed.
    payout = await payout_by_id(conn, payout_id, for_update=True)
    if payout.status == outcome:
        return payout
    if payout.status not in WAITING_IN:
        raise InvalidState(f"payout {payout_id} is already {payout.status}")
    if payout.status == "sent" and not bank_answer:
        raise PayoutWithTheBank(
            f"payout {payout_id} was sent to the bank in batch {payout.batch_id}: only the "
            "bank's answer resolves it (flattr payout confirm|reject FILE --payout "
            f"{payout_id})")
    destination = (
        await ledger.system_account(conn, "external")
        if outcome == "paid"
        else await ledger.member_account(conn, payout.member_id, "revenue")
    )
    await ledger.record(
        conn,
        key=f"payout:{payout_id}:{outcome}",
        kind=f"payout.{outcome}",
        member_id=payout.member_id,
        entries=[
            ledger.Posting(await ledger.system_account(conn, WAITING_IN[payout.status]),
                           -payout.amount_micros),
            ledger.Posting(destination, payout.amount_micros),
        ],
        now=now,
    )
    resolved = await conn.execute(
        update(payouts)
        .where(payouts.c.id == payout_id, payouts.c.status == payout.status)
        .values(status=outcome, resolved_at=now)
    )
    check(resolved.rowcount == 1, f"payout {payout_id} was resolved twice")
    return await payout_by_id(conn, payout_id)


async def mark_sent(
    conn: AsyncConnection, payout_id: int, batch_id: int, now: datetime | None = None
) -> Payout:
    """A requested payout goes out in a batch: its money moves to `payouts_sent`."""
    payout = await payout_by_id(conn, payout_id, for_update=True)
    if payout.status == "sent" and payout.batch_id == batch_id:
        return payout
    if payout.status != "requested":
        raise InvalidState(f"payout {payout_id} is {payout.status}, not requested")
    await ledger.record(
        conn,
        key=f"payout:{payout_id}:sent",
        kind="payout.sent",
        member_id=payout.member_id,
        entries=[
            ledger.Posting(await ledger.system_account(conn, "payouts"), -payout.amount_micros),
            ledger.Posting(await ledger.system_account(conn, "payouts_sent"),
                           payout.amount_micros),
        ],
        now=now,
    )
    sent = await conn.execute(
        update(payouts)
        .where(payouts.c.id == payout_id, payouts.c.status == "requested")
        .values(status="sent", batch_id=batch_id)
    )
    check(sent.rowcount == 1, f"payout {payout_id} was sent twice")
    return await payout_by_id(conn, payout_id)


async def payout_by_id(
    conn: AsyncConnection, payout_id: int, *, for_update: bool = False
) -> Payout:
    query = select(payouts).where(payouts.c.id == payout_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no payout with id {payout_id}")
    return Payout(**row._mapping)


async def payouts_of(conn: AsyncConnection, member_id: int | None = None) -> list[Payout]:
    query = select(payouts).order_by(payouts.c.id).limit(1000)
    if member_id is not None:
        query = query.where(payouts.c.member_id == member_id)
    return [Payout(**r._mapping) for r in await conn.execute(query)]
