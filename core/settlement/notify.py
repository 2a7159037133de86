"""The settlement's last stage: every member's summary of the month into the outbox.

The figures are gathered for all members at once (core/summaries.py), then each summary is
rendered (core/summary_text.py) and written. On PostgreSQL one COPY takes the rows as they
are rendered: the database stores a summary while the next ones are put in words. The stage
commits with all the summaries or none, and a summary is unique per member, period and kind.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.dialect import insert_ignoring_conflicts
from core.outbox import Message, add_deliveries
from core.periods import Period
from core.schema import outbox
from core.settlement.partitions import partition_of
from core.summaries import Figures, Terms, gather
from core.summary_text import KIND, SummaryRenderer

COLUMNS = ("member_id", "period", "kind", "subject", "data", "text", "html", "created_at")
INSERTED_AT_ONCE = 2_000  # rows of an INSERT (SQLite, or PostgreSQL after a conflict)

# lz4 compresses a summary several times faster than PostgreSQL's default (pglz).
_LZ4_KNOWN = text("""
SELECT 1 FROM pg_settings
WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)
""")


async def write_summaries(conn: AsyncConnection, terms: Terms, now: datetime,
                          reader: AsyncConnection | None = None) -> int:
    """Queue the month's summary of every member concerned, and its deliveries. Returns how
    many members have one. A `reader` (with the statistics of the month's shares) gathers
    half of the figures alongside `conn`."""
    if conn.dialect.name == "postgresql":
        if reader is None:
            await analyze_shares(conn, terms.period)
        if await conn.scalar(_LZ4_KNOWN):
            await conn.execute(text("SET LOCAL default_toast_compression = lz4"))
        # The commit need not wait for its log on disk: were it lost in a crash, the month
        # would be at the stage before, and this stage would write the summaries again.
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
    with _collector_paused():
        figures = await gather(conn, terms.period, reader)
        members = [figures[member_id] for member_id in sorted(figures)]
        renderer = SummaryRenderer(terms)
        if conn.dialect.name == "postgresql":
            await _copy(conn, renderer, members, now)
        else:
            await _insert(conn, _rows(renderer, members, now))
    await add_deliveries(conn, str(terms.period), KIND, now)
    return len(members)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cycle collection while a month is summarised: its figures are a million objects
    that every full collection would walk again, for a quarter of the stage's time. They
    hold no cycles; the collector runs again as soon as the summaries are written."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def analyze_shares(conn: AsyncConnection, period: Period) -> None:
    """PostgreSQL: statistics of the month's shares. The settlement has just made them:
    without statistics the planner takes them for a few rows and looks up each share's
    thing by itself."""
    await conn.execute(text(f"ANALYZE {partition_of(period)}"))


def _row(message: Message, now: datetime) -> tuple[Any, ...]:
    """A message as a row of COLUMNS (core.outbox.message_rows, but with orjson: a month of
    data is encoded ten times faster)."""
    return (message.member_id, message.period, message.kind, message.subject,
            orjson.dumps(message.data, option=orjson.OPT_SORT_KEYS).decode(),
            message.text, message.html, now)


def _rows(renderer: SummaryRenderer, members: list[Figures], now: datetime
          ) -> Iterator[tuple[Any, ...]]:
    for member in members:
        yield _row(renderer.render(member), now)


async def _copy(conn: AsyncConnection, renderer: SummaryRenderer, members: list[Figures],
                now: datetime) -> None:
    """PostgreSQL: one COPY, fed as the summaries are rendered; a third of the time of an
    INSERT. COPY cannot pass over a summary written already. Only this stage writes them,
    and it commits them all at once, so none is there; should one be all the same, the
    summaries are inserted instead, passing over it."""
    try:
        async with conn.begin_nested():
            driver = (await conn.get_raw_connection()).driver_connection
            await driver.copy_records_to_table(
                "outbox", records=_rows(renderer, members, now), columns=COLUMNS
            )
    except UniqueViolationError:
        await _insert(conn, _rows(renderer, members, now))


async def _insert(conn: AsyncConnection, rows: Iterator[tuple[Any, ...]]) -> None:
    insert = insert_ignoring_conflicts(conn, outbox, ["member_id", "period", "kind"])
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(dict(zip(COLUMNS, row, strict=True)))
        if len(chunk) == INSERTED_AT_ONCE:
            await conn.execute(insert, chunk)
            chunk = []
    if chunk:
        await conn.execute(insert, chunk)
