"""What a member owes after a refund or a dispute took back money they had already given.

The debt is a member account of kind `debt` whose balance is zero or below: the part of
`external` that this member owes. A reversal moves money out to `external` from the giving
balance and, for what giving no longer holds, from the debt account (below zero); a later
funding pays the debt back first. Giving, revenue and every pool stay at or above zero, so
`no_overdrawn_account` holds as before; `debt_not_positive` and `debt_moves_recorded` (core/
checks.py) prove the rest. While the balance is below zero the member cannot flattr.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from core import ledger
from core.dialect import insert_ignoring_conflicts
from core.errors import InDebt, check
from core.locks import lock_ownership
from core.money import format_amount
from core.schema import DEBT_ACCOUNT_KIND, accounts


async def lock_member_money(conn: AsyncConnection, member_id: int) -> None:
    """Funding and reversals of one member one after the other (PostgreSQL: the giving
    account's row; SQLite's writers take turns anyway)."""
    if conn.dialect.name != "postgresql":
        return
    locked = await conn.scalar(
        select(accounts.c.id)
        .where(accounts.c.member_id == member_id, accounts.c.kind == "giving")
        .with_for_update()
    )
    check(locked is not None, f"member {member_id} has no giving account")


async def lock_against_settlement(conn: AsyncConnection) -> None:
    """A settlement's charges read giving balances and post them in one transaction under
    the ownership lock: money taken from giving waits for that, or it would overdraw."""
    await lock_ownership(conn, exclusive=False)


async def debt_account(conn: AsyncConnection, member_id: int) -> tuple[int | None, int]:
    """The member's debt account (None when never needed) and what they owe (>= 0)."""
    row = (await conn.execute(
        select(accounts.c.id, accounts.c.balance_micros)
        .where(accounts.c.member_id == member_id, accounts.c.kind == DEBT_ACCOUNT_KIND)
    )).first()
    if row is None:
        return None, 0
    check(row.balance_micros <= 0, f"member {member_id}'s debt account is above zero")
    return row.id, -row.balance_micros


async def make_debt_account(conn: AsyncConnection, member_id: int) -> int:
    await conn.execute(
        insert_ignoring_conflicts(conn, accounts, ["member_id", "kind"])
        .values(member_id=member_id, kind=DEBT_ACCOUNT_KIND, balance_micros=0)
    )
    account_id, _ = await debt_account(conn, member_id)
    check(account_id is not None, "the debt account was not made")
    return account_id


async def into_member(conn: AsyncConnection, member_id: int,
                      amount_micros: int) -> list[ledger.Posting]:
    """The postings of money reaching a member: their debt first, the rest to giving. Under
    `lock_member_money`, so that the debt read is still the debt when it is posted."""
    debt_id, owed = await debt_account(conn, member_id)
    repaid = min(owed, amount_micros)
    entries = [ledger.Posting(await ledger.member_account(conn, member_id, "giving"),
                              amount_micros - repaid)]
    if repaid:
        entries.append(ledger.Posting(debt_id, repaid))
    return entries


async def owed_by(conn: AsyncConnection, member_id: int) -> int:
    return (await debt_account(conn, member_id))[1]


async def refuse_if_in_debt(conn: AsyncConnection, member_id: int, *,
                            repay: str = "add funds", before: str = "flattring again") -> None:
    owed = await owed_by(conn, member_id)
    if owed > 0:
        raise InDebt(f"a refund or dispute left you owing {format_amount(owed)}: {repay} "
                     f"to repay it before {before}")
