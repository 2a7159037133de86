"""Benchmark of the monthly summaries (stage 6 of the settlement) against the settlement itself.

Loads the month of bench/settle.py (2M flattrs, 100k givers by default) on PostgreSQL, links
chat identities to some of its members, and settles fresh copies of it. Each run times stages
1-5 (the settlement proper) and stage 6 (gathering, rendering and queueing every member's
summary with its deliveries) in the same process, one after the other. The ratio
summaries / settlement, the median of the runs, has a target of at most 1.0.

    .venv/bin/python bench/summaries.py [--size 1M|2M] [--runs 3] [--database-url URL]

Then, if bench/delivery.py exists, lease+ack through the gateway on the settled month
(`measure_delivery`). See bench/README.md. Exit code 0 is a measurement (even when the
target is missed); 1 means the outbox is wrong (a summary missing, twice, or too long).
"""

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from settle import (  # bench/settle.py: the month, its loader and the scratch databases
    DEFAULT_URL,
    PERIOD,
    SETTLE_AT,
    SIZES,
    Size,
    admin,
    load,
    statement_timer,
    with_database,
)
from sqlalchemy import TextClause, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core import summaries as figures
from core.db import create_engine
from core.migrate import upgrade
from core.settings import Settings
from core.settlement import STAGES, notify, settle_period
from core.summary_text import TEXT_LIMIT

TARGET = 1.0  # summaries / settlement
SUMMARIES_STAGE = len(STAGES)

# Half the members linked a Telegram account, a fifth a Discord one: their summaries get a
# delivery each, as in a deployment where most members came through a chat.
IDENTITIES = text("""
INSERT INTO identities (member_id, identity, created_at)
SELECT m.id, n.network || ':' || (n.base + m.id), m.created_at
FROM members m
JOIN (VALUES ('telegram', 2, 100000000), ('discord', 5, 200000000000000000))
     AS n(network, every, base) ON m.id % n.every = 0
ORDER BY m.id
""")

# What the outbox must hold after the settlement: one summary for each member with a charge
# of the month or a share received or held for them; none twice, none too long.
OUTBOX_CHECK = text("""
SELECT (SELECT COUNT(*) FROM outbox WHERE period = :period AND kind = 'summary'),
       (SELECT COUNT(DISTINCT member_id) FROM outbox WHERE period = :period),
       (SELECT COUNT(*) FROM (SELECT member_id FROM charges WHERE period = :period
                              UNION SELECT owner_id FROM shares
                              WHERE period = :period AND owner_id IS NOT NULL) m),
       (SELECT COALESCE(MAX(LENGTH(text)), 0) FROM outbox WHERE period = :period),
       (SELECT COUNT(*) FROM outbox_deliveries),
       (SELECT pg_size_pretty(pg_total_relation_size('outbox')))
""")


@dataclass
class Run:
    settlement_s: float = 0.0  # stages 1-5, from the call
    summaries_s: float = 0.0  # stage 6
    statements: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.summaries_s / self.settlement_s


@dataclass
class Measurement:
    size: Size
    load_s: float = 0.0
    runs: list[Run] = field(default_factory=list)
    outbox: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    delivery: dict | None = None

    @property
    def ratio(self) -> float:
        return statistics.median(run.ratio for run in self.runs)


# The parts of stage 6, timed by wrapping the functions it calls (its statements run partly
# on asyncpg itself, where SQLAlchemy's events do not see them).
PHASES = ("analyze_shares", "gather", "_copy", "_insert", "add_deliveries")
STATEMENT_NAMES = {value: name for name, value in vars(figures).items()
                   if isinstance(value, TextClause)}


@contextmanager
def phase_timer(totals: dict[str, float]) -> Iterator[None]:
    originals = {name: getattr(notify, name) for name in PHASES}

    def timed(name: str, function: Callable[..., Awaitable[Any]]):
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - started
        return wrapper

    for name, function in originals.items():
        setattr(notify, name, timed(name, function))
    fetcher = figures._fetcher

    async def timed_fetcher(conn: Any):
        fetch = await fetcher(conn)

        async def timed_fetch(statement: Any, params: dict[str, Any]):
            started = time.perf_counter()
            try:
                return await fetch(statement, params)
            finally:
                name = STATEMENT_NAMES.get(statement, "?")
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - started
        return timed_fetch

    figures._fetcher = timed_fetcher
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(notify, name, function)
        figures._fetcher = fetcher


async def time_settlement(engine: AsyncEngine, settings: Settings) -> Run:
    run, marks = Run(), {}

    def on_stage(number: int, name: str) -> None:
        marks[number] = time.perf_counter()

    started = time.perf_counter()
    with statement_timer(engine, run.statements, lambda: len(marks) + 1), \
            phase_timer(run.phases):
        await settle_period(engine, PERIOD, settings, now=SETTLE_AT, on_stage=on_stage)
    run.settlement_s = marks[SUMMARIES_STAGE - 1] - started
    run.summaries_s = marks[SUMMARIES_STAGE] - marks[SUMMARIES_STAGE - 1]
    return run


async def check_outbox(engine: AsyncEngine, result: Measurement) -> None:
    async with engine.connect() as conn:
        row = (await conn.execute(OUTBOX_CHECK, {"period": str(PERIOD)})).one()
    summaries, members, expected, longest, deliveries, size = row
    result.outbox = {"summaries": summaries, "members": members, "longest text": longest,
                     "deliveries": deliveries, "outbox size": size}
    if summaries != members:
        result.problems.append(f"{summaries} summaries for {members} members")
    if members != expected:
        result.problems.append(f"{members} members summarised, {expected} expected")
    if longest > TEXT_LIMIT:
        result.problems.append(f"a text of {longest} characters")


# --- Delivery: another helper's bench/delivery.py, when it is there. ------------------------


async def measure_delivery(database_url: str) -> dict | None:
    """HOOK: lease+ack through the gateway on the settled month's outbox, by
    bench/delivery.py's `lease_ack_rate(database_url) -> dict` (messages/s). None while that
    script does not exist."""
    try:
        from delivery import lease_ack_rate
    except ImportError:
        return None
    return await lease_ack_rate(database_url)


# --- Runs on copies of the loaded month. ---------------------------------------------------


@asynccontextmanager
async def scratch_database(server_url: str, name: str, template: str | None = None
                           ) -> AsyncIterator[str]:
    """A database of the run's own, empty or a copy of `template`, dropped at the end."""
    copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    await admin(server_url, f'CREATE DATABASE "{name}"{copy}')
    try:
        yield with_database(server_url, name)
    finally:
        await admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def engine_of(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def bench(server_url: str, size: Size, *, runs: int) -> Measurement:
    name = f"flattr_bench_{secrets.token_hex(4)}"
    result = Measurement(size)
    print(f"[{size.label}] database {name}", flush=True)
    async with scratch_database(server_url, name) as url:
        await asyncio.to_thread(upgrade, url)
        async with engine_of(url) as engine:
            started = time.perf_counter()
            await load(engine, size)
            async with engine.begin() as conn:
                await conn.execute(IDENTITIES)
                await conn.execute(text("ANALYZE identities"))
            result.load_s = time.perf_counter() - started
        print(f"[{size.label}] loaded in {result.load_s:.1f} s", flush=True)
        for number in range(1, runs + 1):
            await settle_copy(server_url, name, number, result, last=number == runs)
    return result


async def settle_copy(server_url: str, loaded: str, number: int, result: Measurement, *,
                      last: bool) -> None:
    """Settle a fresh copy of the loaded month; after the last, measure the delivery."""
    async with scratch_database(server_url, f"{loaded}_run{number}", loaded) as url:
        async with engine_of(url) as engine:
            run = await time_settlement(engine, Settings(database_url=url, redis_url=None))
            result.runs.append(run)
            print(f"[{result.size.label}] run {number}: settlement {run.settlement_s:.2f} s, "
                  f"summaries {run.summaries_s:.2f} s", flush=True)
            if number == 1:
                await check_outbox(engine, result)
        if last:
            result.delivery = await measure_delivery(url)


# --- Report. -------------------------------------------------------------------------------


def report(result: Measurement) -> None:
    size = result.size
    print()
    print(f"== {size.label}: {size.flattrs:,} flattrs, {size.givers:,} givers, period {PERIOD}")
    print(f"load (and identities)              {result.load_s:9.2f} s")
    for name, value in result.outbox.items():
        print(f"{name:<35}{value:>10}" if isinstance(value, str) else
              f"{name:<35}{value:>10,}")
    print(f"{'run':<6}{'settlement':>12}{'summaries':>12}{'ratio':>8}")
    for number, run in enumerate(result.runs, start=1):
        print(f"{number:<6}{run.settlement_s:>11.2f}s{run.summaries_s:>11.2f}s"
              f"{run.ratio:>7.2f}x")
    run = min(result.runs, key=lambda each: abs(each.ratio - result.ratio))
    print(f"stage {SUMMARIES_STAGE} of the median run, by part:")
    for name, label in (("analyze_shares", "statistics of the month's shares"),
                        ("gather", "gather the figures (two connections)"),
                        ("_copy", "render and COPY into the outbox"),
                        ("_insert", "INSERT into the outbox (after a conflict)"),
                        ("add_deliveries", "deliveries (core.outbox.add_deliveries)")):
        if name in run.phases:
            print(f"  {label:<42}{run.phases[name]:>7.2f} s")
        if name == "gather":
            for statement in STATEMENT_NAMES.values():
                if statement in run.phases:
                    print(f"    {statement:<40}{run.phases[statement]:>7.2f} s")
    parts = sum(run.phases.get(name, 0.0) for name in PHASES)
    print(f"  {'the rest':<42}{run.summaries_s - parts:>7.2f} s")
    print("slowest statements of stages 1-5:")
    slowest = sorted(((label, seconds) for label, seconds in run.statements.items()
                      if not label.startswith(f"{SUMMARIES_STAGE}. ")), key=lambda i: -i[1])
    for label, seconds in slowest[:5]:
        print(f"  {seconds:8.2f} s  {label}")
    print()
    print(f"ratio summaries / settlement (median of {len(result.runs)})"
          f"{result.ratio:>8.2f}x   target <= {TARGET:g}x")
    if result.problems:
        print("OUTBOX WRONG: " + "; ".join(result.problems))
    else:
        print("TARGET MISSED" if result.ratio > TARGET else "target met")
    if result.delivery is None:
        print("delivery: bench/delivery.py is not there yet (measure_delivery skipped)")
    else:
        print("delivery (lease+ack through the gateway):")
        for name, value in result.delivery.items():
            print(f"  {name:<33}{value}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["1M", "2M"], default="2M",
                        help="flattrs in the month (default 2M)")
    parser.add_argument("--runs", type=int, default=3, choices=range(1, 10), metavar="N",
                        help="settle N fresh copies of the loaded month; the ratio reported "
                             "is the median (default 3)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FLATTR_BENCH_DATABASE_URL", DEFAULT_URL),
        help="an existing database on the PostgreSQL server: scratch databases are made "
             f"next to it and dropped (default: $FLATTR_BENCH_DATABASE_URL or {DEFAULT_URL})",
    )
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> int:
    if make_url(args.database_url).get_backend_name() != "postgresql":
        print("the benchmark needs a postgresql:// URL", file=sys.stderr)
        return 2
    result = await bench(args.database_url, SIZES[args.size], runs=args.runs)
    report(result)
    return 1 if result.problems else 0


if __name__ == "__main__":
    started_at = datetime.now(UTC)
    code = asyncio.run(main(parse_args()))
    print(f"\nfinished in {(datetime.now(UTC) - started_at).total_seconds():.0f} s")
    sys.exit(code)
