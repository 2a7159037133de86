"""PostgreSQL: each settled month's shares in a partition of their own.

Settlement makes the month's table from the month's shares (CREATE TABLE … AS, which
PostgreSQL may compute with parallel workers, where INSERT … SELECT runs on one core),
gives it the columns, NOT NULLs and checks of `shares`, and only then attaches it, which
builds its indexes from the full table in one pass each: a million shares inserted into
live indexes one by one cost several times that. All of it runs in the settlement
stage's transaction: a killed run leaves no partition behind.
"""

import re
from typing import Any

from sqlalchemy import CheckConstraint, TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.periods import Period
from core.schema import shares

_PARTITION = re.compile(r"shares_[0-9]{4}_[0-9]{2}")

_COLUMNS = text("""
SELECT quote_ident(attname), format_type(atttypid, atttypmod), attnotnull
FROM pg_attribute
WHERE attrelid = 'shares'::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum
""")


# The planner's default costs keep a query that returns a million rows in one process;
# on the split, workers computing the joins and sorts while the leader writes win.
_PARALLEL = ("parallel_setup_cost", "parallel_tuple_cost")


def partition_of(period: Period) -> str:
    return f"shares_{period.year:04d}_{period.month:02d}"


def is_partition(table_name: str) -> bool:
    return _PARTITION.fullmatch(table_name) is not None


async def create_from(
    conn: AsyncConnection, period: Period, rows: TextClause, params: dict[str, Any]
) -> str:
    """The month's table made of `rows` (a SELECT of every column of `shares`, by name),
    shaped like `shares` and holding only this period, not yet attached."""
    name = partition_of(period)
    columns = (await conn.execute(_COLUMNS)).all()
    select_list = ", ".join(f"CAST(r.{column} AS {type_}) AS {column}"
                            for column, type_, _ in columns)
    for setting in _PARALLEL:
        await conn.execute(text(f"SET LOCAL {setting} = 0"))
    await conn.execute(
        text(f"CREATE TABLE {name} AS SELECT {select_list} FROM ({rows.text}) r"), params
    )
    for setting in _PARALLEL:
        await conn.execute(text(f"SET LOCAL {setting} TO DEFAULT"))
    alterations = [f"ALTER {column} SET NOT NULL" for column, _, not_null in columns if not_null]
    alterations += [f"ADD CONSTRAINT {check} CHECK ({condition})"
                    for check, condition in _checks_of_shares()]
    alterations.append(f"ADD CONSTRAINT {name}_period CHECK (period = '{period}')")
    await conn.execute(text(f"ALTER TABLE {name} " + ", ".join(alterations)))
    return name


def _checks_of_shares() -> list[tuple[str, str]]:
    """The name and condition of each check of `shares`, in the words that created it:
    ATTACH compares the parsed conditions, and a condition read back from the catalog
    parses into a different tree."""
    return [(str(check.name), str(check.sqltext))
            for check in shares.constraints if isinstance(check, CheckConstraint)]


async def attach(conn: AsyncConnection, period: Period) -> None:
    """Attach the filled table: PostgreSQL builds the indexes of `shares` on it, and its
    CHECK on the period spares the scan that would prove the rows belong."""
    name = partition_of(period)
    await conn.execute(text(
        f"ALTER TABLE shares ATTACH PARTITION {name} FOR VALUES IN ('{period}')"
    ))
