"""Payout batches: requested payouts sent in one file to the bank, and the bank's answer.

`make_batch` takes every requested payout whose member has a payout account, writes the
file with the payout method (core/payout_methods/), keeps it, and marks each payout sent
(a ledger transaction each, `payout:<id>:sent`); run again, it finds nothing left to send.
`answer_batch` reads such a file back and records the bank's answer: each payout `paid`
(to `external`) or `failed` (back to revenue), once. `batch_named` gives a batch as it was
sent, its file byte for byte, to write it again (it changes nothing).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.errors import InvalidState, NotFound, check
from core.payout_methods import BankAccount, PayoutLine, PayoutMethod
from core.payouts import Payout, mark_sent, payout_by_id, resolve_payout
from core.schema import payout_accounts, payout_batches, payouts

MAX_PAYOUTS_A_BATCH = 5_000


@dataclass(frozen=True)
class Batch:
    id: int
    method: str
    message_id: str
    payout_count: int
    total_micros: int
    document: bytes
    created_at: datetime


@dataclass(frozen=True)
class Answered:
    payout: Payout
    changed: bool  # False: it had this outcome already (or, for a whole file, another one)


async def make_batch(conn: AsyncConnection, method: PayoutMethod,
                     now: datetime | None = None) -> Batch | None:
    """One file of the payouts due; None when there is none."""
    now = now or utc_now()
    query = (
        select(payouts.c.id, payouts.c.amount_micros, payout_accounts.c.iban,
               payout_accounts.c.bic, payout_accounts.c.holder_name)
        .join(payout_accounts, payout_accounts.c.member_id == payouts.c.member_id)
        .where(payouts.c.status == "requested")
        .order_by(payouts.c.id)
        .limit(MAX_PAYOUTS_A_BATCH)
    )
    if conn.dialect.name == "postgresql":  # a second batch run waits, then finds them sent
        query = query.with_for_update(of=payouts)
    lines = [PayoutLine(r.id, r.amount_micros, BankAccount(r.iban, r.bic, r.holder_name))
             for r in await conn.execute(query)]
    if not lines:
        return None
    message_id = f"FLATTR-{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"
    document = method.write(message_id, lines, now)
    total = sum(line.amount_micros for line in lines)
    batch_id = await conn.scalar(
        payout_batches.insert().values(
            method=method.name, message_id=message_id, payout_count=len(lines),
            total_micros=total, document=document.decode(), created_at=now,
        ).returning(payout_batches.c.id)
    )
    for line in lines:
        await mark_sent(conn, line.payout_id, batch_id, now)
    return Batch(batch_id, method.name, message_id, len(lines), total, document, now)


async def batch_named(conn: AsyncConnection, name: str) -> Batch:
    """A batch sent before, by its id or its message id; its document is the file as it was
    written (kept as its UTF-8 text, which gives back the same bytes)."""
    if name.isascii() and name.isdigit():
        if not 0 < int(name) < 2**63:
            raise NotFound(f"no batch {name}")
        where = payout_batches.c.id == int(name)
    else:
        where = payout_batches.c.message_id == name
    row = (await conn.execute(select(payout_batches).where(where))).first()
    if row is None:
        raise NotFound(f"no batch {name!r} was sent from here")
    return Batch(row.id, row.method, row.message_id, row.payout_count, row.total_micros,
                 row.document.encode(), row.created_at)


async def unsent_without_account(conn: AsyncConnection) -> list[int]:
    """Requested payouts that no batch can take: their member has no payout account."""
    rows = await conn.execute(
        select(payouts.c.id)
        .outerjoin(payout_accounts, payout_accounts.c.member_id == payouts.c.member_id)
        .where(payouts.c.status == "requested", payout_accounts.c.member_id.is_(None))
        .order_by(payouts.c.id).limit(1000)
    )
    return list(rows.scalars())


async def answer_batch(conn: AsyncConnection, method: PayoutMethod, document: bytes,
                       outcome: str, *, only: frozenset[int] | None = None,
                       now: datetime | None = None) -> list[Answered]:
    """The bank's answer to a file we sent: `paid` or `failed`, for each of its payouts
    or only those named. A whole file passes over payouts answered otherwise before (one
    rejected from a file the bank then paid); a named payout must be still unanswered or
    answered the same way."""
    check(outcome in ("paid", "failed"), "a bank answers paid or failed")
    sent = method.read(document)
    batch = (await conn.execute(select(payout_batches).where(
        payout_batches.c.message_id == sent.message_id))).first()
    if batch is None:
        raise NotFound(f"no batch {sent.message_id!r} was sent from here")
    kept = method.read(batch.document.encode())
    if sorted((x.payout_id, x.amount_micros) for x in sent.lines) != sorted(
            (x.payout_id, x.amount_micros) for x in kept.lines):
        raise InvalidState(f"the file does not match batch {sent.message_id} as it was sent")
    ids = [line.payout_id for line in kept.lines]
    if only is not None and not only <= set(ids):
        raise NotFound(f"payouts {sorted(only - set(ids))} are not in this batch")
    answered = []
    for payout_id in ids:
        if only is not None and payout_id not in only:
            continue
        before = await payout_by_id(conn, payout_id, for_update=True)
        check(before.batch_id == batch.id, f"payout {payout_id} is not of batch {batch.id}")
        if only is None and before.status not in ("sent", outcome):
            answered.append(Answered(before, changed=False))
            continue
        after = await resolve_payout(conn, payout_id, outcome, now, bank_answer=True)
        answered.append(Answered(after, changed=before.status != after.status))
    return answered
