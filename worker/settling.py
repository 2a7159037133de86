"""Settling what is due: every month that may be settled (it ended at least SETTLE_AFTER ago)
and is not, in order, a run left `settling` resumed first. Months with nothing in them are
settled too: held shares come back to their givers at each month's settlement.

One worker settles at a time: on PostgreSQL the one holding a session-level advisory lock
on a connection of its own (it goes with the connection when a worker dies), on SQLite
the one holding a file lock beside the database.
"""

import fcntl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import READ_ONLY
from core.errors import SettlementRunning
from core.money import format_money
from core.periods import Period
from core.schema import flattrs, outbox, settlements, subscriptions
from core.settings import Settings
from core.settlement import settle_period
from core.settlement.run import SETTLE_AFTER
from core.settlement.summary import settlement_summary
from worker.done import Done, failure, logged

# The worker's settling, one key ("FlattW"); core.locks' locks are other keys or two-key.
SETTLING_LOCK = 0x466C61747457
MONTHS_PER_ROUND = 24  # a worker started years late settles the rest in its next rounds


def last_settleable(now: datetime) -> Period:
    """The latest month that may be settled at `now`."""
    return Period.of(now - SETTLE_AFTER).previous()


async def months_due(conn: AsyncConnection, now: datetime) -> list[Period]:
    """The months to settle at `now`, in order: unfinished runs, then every month after the
    last one begun, from the first with flattrs or subscriptions when none was."""
    last = last_settleable(now)
    unfinished = [Period.parse(p) for p in (await conn.execute(
        select(settlements.c.period).where(settlements.c.status != "settled")
        .order_by(settlements.c.period)
    )).scalars()]
    latest = await conn.scalar(select(func.max(settlements.c.period)))
    start = Period.parse(latest).next() if latest else await _first_month(conn)
    due = [month for month in unfinished if month <= last]
    month = start
    while month is not None and month <= last and len(due) < MONTHS_PER_ROUND:
        due.append(month)
        month = month.next()
    return due[:MONTHS_PER_ROUND]


async def _first_month(conn: AsyncConnection) -> Period | None:
    found = [
        await conn.scalar(select(func.min(flattrs.c.period))),
        await conn.scalar(select(func.min(subscriptions.c.first_period))),
    ]
    return min((Period.parse(p) for p in found if p is not None), default=None)


@asynccontextmanager
async def settling_lock(engine: AsyncEngine) -> AsyncIterator[bool]:
    """Whether this worker may settle now (another one holds the lock: False)."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            held = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"),
                                     {"key": SETTLING_LOCK})
            try:
                yield bool(held)
            finally:
                if held:
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"),
                                       {"key": SETTLING_LOCK})
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True  # a database of one process
        return
    with open(Path(database).with_name(Path(database).name + ".worker-lock"), "a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = False
        else:
            held = True
        try:
            yield held
        finally:
            if held:
                fcntl.flock(file, fcntl.LOCK_UN)


async def settle_due(engine: AsyncEngine, settings: Settings, now: datetime,
                     should_stop: Callable[[], bool] = lambda: False) -> list[Done]:
    """Settle every month due at `now`; a failed month stops the round (those after it wait,
    settled in order)."""
    async with engine.connect() as conn:
        await conn.execution_options(**READ_ONLY)
        if not await months_due(conn, now):
            return []
    async with settling_lock(engine) as held:
        if not held:
            return [logged(Done("settle", "settling: another worker holds the lock",
                                {"skipped": True}))]
        async with engine.connect() as conn:
            await conn.execution_options(**READ_ONLY)
            due = await months_due(conn, now)  # another worker may have settled meanwhile
        done: list[Done] = []
        for period in due:
            if should_stop():
                break
            try:
                result = await settle_period(engine, period, settings, now=now)
            except SettlementRunning as error:  # `flattr settle` by hand, at this moment
                done.append(logged(Done("settle", f"settling {period}: {error.message}",
                                        {"period": str(period), "skipped": True})))
                break
            except Exception as error:
                done.append(failure("settle", f"settling {period}", error))
                break
            done.append(logged(await _settled(engine, period, result.stages_run, settings)))
        return done


async def _settled(engine: AsyncEngine, period: Period, stages_run: int,
                   settings: Settings) -> Done:
    async with engine.connect() as conn:
        await conn.execution_options(**READ_ONLY)
        totals = await settlement_summary(conn, period)
        summaries = await conn.scalar(
            select(func.count()).select_from(outbox)
            .where(outbox.c.period == str(period), outbox.c.kind == "summary")
        )

    def money(micros: int) -> str:
        return format_money(micros, settings.currency)

    givers = totals["givers_funded"] + totals["givers_unfunded"]
    line = (f"settled {period}: {stages_run} stages, {givers} giver{'' if givers == 1 else 's'} "
            f"({totals['givers_unfunded']} unfunded), {money(totals['charged_micros'])} charged, "
            f"{money(totals['to_revenue_micros'])} to creators, {money(totals['held_micros'])} "
            f"held, {money(totals['returned_micros'])} returned, {summaries} summaries")
    counts = {"period": str(period), "stages_run": stages_run, "givers": givers,
              "givers_unfunded": totals["givers_unfunded"],
              "charged_micros": totals["charged_micros"], "fees_micros": totals["fees_micros"],
              "to_revenue_micros": totals["to_revenue_micros"],
              "held_micros": totals["held_micros"],
              "released_micros": totals["released_micros"],
              "returned_micros": totals["returned_micros"], "summaries": summaries}
    return Done("settle", line, counts)
