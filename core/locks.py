"""Locks between settlement and the operations that change what it splits.

On PostgreSQL, advisory locks held for the length of a transaction. Settlement's split
holds both exclusively, always the month's flattrs first, then ownership:
- ownership: claims verified, chat identities linked or unlinked, authors learnt share it;
- a month's flattrs: every flattr made or taken back in that month shares it (the click
  path's batch through `flattr_period_open`, migration 0005), so clicks of the next month
  never wait for a split.
SQLite needs none: its writers already take turns (every transaction begins IMMEDIATE).
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.periods import Period

OWNERSHIP_LOCK = 0x466C61747472  # "Flattr"
# The class of the two-key locks (class, month) of a month's flattrs: "Flat". Two-key and
# one-key advisory locks never collide in PostgreSQL.
PERIOD_FLATTRS_LOCK = 0x466C6174


def period_lock_key(period: Period) -> int:
    """The month as one number, as `flattr_period_open` computes it from 'YYYY-MM'."""
    return period.year * 12 + period.month - 1


async def lock_ownership(conn: AsyncConnection, *, exclusive: bool) -> None:
    if conn.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(text(f"SELECT {function}(:key)"), {"key": OWNERSHIP_LOCK})


async def lock_period_flattrs(conn: AsyncConnection, period: Period, *, exclusive: bool) -> None:
    if conn.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(text(f"SELECT {function}(:lock_class, :month)"),
                       {"lock_class": PERIOD_FLATTRS_LOCK, "month": period_lock_key(period)})
