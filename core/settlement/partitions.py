"""PostgreSQL: each settled month's shares in a partition of their own.

Settlement creates the month's table detached, fills it, and only then attaches it to
`shares`, which builds its indexes from the sorted rows in one pass each; a million
shares inserted into live indexes one by one cost several times that. All of it runs in
the settlement stage's transaction: a killed run leaves no partition behind.
"""

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.periods import Period

_PARTITION = re.compile(r"shares_[0-9]{4}_[0-9]{2}")


def partition_of(period: Period) -> str:
    return f"shares_{period.year:04d}_{period.month:02d}"


def is_partition(table_name: str) -> bool:
    return _PARTITION.fullmatch(table_name) is not None


async def create_detached(conn: AsyncConnection, period: Period) -> str:
    """An empty table shaped like `shares`, holding only this period, not yet attached."""
    name = partition_of(period)
    await conn.execute(text(
        f"CREATE TABLE {name} (LIKE shares INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
        f"CONSTRAINT {name}_period CHECK (period = '{period}'))"
    ))
    return name


async def attach(conn: AsyncConnection, period: Period) -> None:
    """Attach the filled table: PostgreSQL builds the indexes of `shares` on it, and its
    CHECK on the period spares the scan that would prove the rows belong."""
    name = partition_of(period)
    await conn.execute(text(
        f"ALTER TABLE shares ATTACH PARTITION {name} FOR VALUES IN ('{period}')"
    ))
    await conn.execute(text(f"ANALYZE {name}"))
