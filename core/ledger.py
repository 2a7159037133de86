"""The double-entry ledger: transactions of postings that sum to zero, with unique keys.

A transaction is never edited; a mistake is corrected by another transaction. Balances
are cached on the accounts and always equal the sum of their postings (`core.checks`).
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.dialect import insert_ignoring_conflicts
from core.errors import IdempotencyConflict, InsufficientFunds, InvariantBroken, check
from core.money import MAX_AMOUNT_MICROS
from core.schema import accounts, ledger_transactions, postings


@dataclass(frozen=True)
class Posting:
    account_id: int
    amount_micros: int


@dataclass(frozen=True)
class Recorded:
    transaction_id: int
    created: bool  # False when the key had been used before: a replay, nothing moved


def key_part(caller_key: str) -> str:
    """A caller's idempotency key as part of a ledger key (200 characters in all): a long
    one is replaced by its digest, so any caller key fits and stays unique."""
    if len(caller_key) <= 64:
        return caller_key
    return "sha256:" + hashlib.sha256(caller_key.encode()).hexdigest()


async def system_account(conn: AsyncConnection, kind: str) -> int:
    account_id = await conn.scalar(
        select(accounts.c.id).where(accounts.c.kind == kind, accounts.c.member_id.is_(None))
    )
    if account_id is None:
        raise InvariantBroken(f"system account {kind!r} is missing: run `flattr db upgrade`")
    return account_id


async def member_account(conn: AsyncConnection, member_id: int, kind: str) -> int:
    account_id = await conn.scalar(
        select(accounts.c.id).where(accounts.c.member_id == member_id, accounts.c.kind == kind)
    )
    if account_id is None:
        raise InvariantBroken(f"member {member_id} has no {kind} account")
    return account_id


async def balance(conn: AsyncConnection, account_id: int) -> int:
    return await conn.scalar(select(accounts.c.balance_micros).where(accounts.c.id == account_id))


async def record(
    conn: AsyncConnection,
    *,
    key: str,
    kind: str,
    entries: Iterable[Posting],
    period: str | None = None,
    member_id: int | None = None,
    memo: str | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Record one balanced transaction inside the caller's database transaction.

    A key that was already used records nothing and returns the first transaction: the
    caller's retry is a replay. An account that would be overdrawn raises
    InsufficientFunds; the caller's transaction must then be rolled back.
    """
    entries = [e for e in entries if e.amount_micros != 0]
    check(sum(e.amount_micros for e in entries) == 0, f"transaction {key} does not balance")
    check(entries, f"transaction {key} moves nothing")
    check(all(abs(e.amount_micros) <= MAX_AMOUNT_MICROS for e in entries), "amount out of range")

    inserted = await conn.execute(
        insert_ignoring_conflicts(conn, ledger_transactions, ["key"])
        .values(
            key=key, kind=kind, period=period, member_id=member_id,
            created_at=now or utc_now(), memo=memo,
        )
        .returning(ledger_transactions.c.id)
    )
    transaction_id = inserted.scalar()
    if transaction_id is None:
        return await _replay(conn, key, entries)

    await conn.execute(
        postings.insert(),
        [
            {"transaction_id": transaction_id, "account_id": e.account_id,
             "amount_micros": e.amount_micros}
            for e in entries
        ],
    )
    # Apply in account order so that concurrent transactions lock rows in the same order.
    for entry in sorted(entries, key=lambda e: e.account_id):
        await _apply(conn, entry)
    return Recorded(transaction_id, created=True)


async def _replay(conn: AsyncConnection, key: str, entries: list[Posting]) -> Recorded:
    """The key was used before: the same movement is a replay, another one a conflict."""
    existing = await conn.scalar(
        select(ledger_transactions.c.id).where(ledger_transactions.c.key == key)
    )
    rows = await conn.execute(
        select(postings.c.account_id, postings.c.amount_micros).where(
            postings.c.transaction_id == existing
        )
    )
    recorded = sorted((r.account_id, r.amount_micros) for r in rows)
    if recorded != sorted((e.account_id, e.amount_micros) for e in entries):
        raise IdempotencyConflict(f"the key {key!r} was already used for another movement")
    return Recorded(existing, created=False)


async def _apply(conn: AsyncConnection, entry: Posting) -> None:
    new_balance = accounts.c.balance_micros + entry.amount_micros
    result = await conn.execute(
        update(accounts)
        .where(
            accounts.c.id == entry.account_id,
            # `external` and a member's debt (core/funding/debt.py) are the outside world:
            # they may be below zero; a debt is never above it (a CHECK of the schema).
            accounts.c.kind.in_(("external", "debt")) | (new_balance >= 0),
        )
        .values(balance_micros=new_balance)
        .returning(accounts.c.id)
    )
    if result.scalar() is None:
        raise InsufficientFunds("the balance is too low for this amount")


async def transaction_by_key(conn: AsyncConnection, key: str) -> dict | None:
    row = (
        await conn.execute(select(ledger_transactions).where(ledger_transactions.c.key == key))
    ).mappings().first()
    return dict(row) if row else None
