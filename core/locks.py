"""Locks between settlement and the operations that change who owns what.

On PostgreSQL, an advisory lock held for the length of a transaction: settlement's
split holds it exclusively, ownership changes share it. SQLite needs none: its
writers already take turns (every transaction begins IMMEDIATE).
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

OWNERSHIP_LOCK = 0x466C61747472  # "Flattr"


async def lock_ownership(conn: AsyncConnection, *, exclusive: bool) -> None:
    if conn.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(text(f"SELECT {function}(:key)"), {"key": OWNERSHIP_LOCK})
