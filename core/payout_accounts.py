"""Where a member's payouts go: their SEPA account (IBAN, holder's name, optional BIC)."""

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.dialect import insert_updating_conflicts
from core.payout_methods import BankAccount
from core.payout_methods.sepa import bank_account
from core.schema import payout_accounts


async def set_payout_account(conn: AsyncConnection, member_id: int, iban: str,
                             holder_name: str, bic: str | None = None,
                             now: datetime | None = None) -> BankAccount:
    """Check and store the account (replacing the one before); payouts already sent keep
    the account they were sent to (it is in their batch's file)."""
    account = bank_account(iban, holder_name, bic)
    values = {"iban": account.iban, "bic": account.bic, "holder_name": account.holder_name,
              "updated_at": now or utc_now()}
    await conn.execute(insert_updating_conflicts(
        conn, payout_accounts, ["member_id"], {"member_id": member_id, **values}, values))
    return account


async def payout_account(conn: AsyncConnection, member_id: int) -> BankAccount | None:
    row = (await conn.execute(select(payout_accounts).where(
        payout_accounts.c.member_id == member_id))).first()
    return BankAccount(row.iban, row.bic, row.holder_name) if row else None


async def remove_payout_account(conn: AsyncConnection, member_id: int) -> bool:
    removed = await conn.execute(delete(payout_accounts).where(
        payout_accounts.c.member_id == member_id))
    return removed.rowcount > 0
