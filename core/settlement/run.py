"""Settling a period: guarded, idempotent stages (the payday mechanism of liberapay).

A row in `settlements` carries the stage reached. Each stage runs in one database
transaction that also advances that counter, so a run killed at any point rolls back to
the last finished stage and a new run resumes there. The rules a run started with
(fee, minimum, hold window, idle policy) are stored on that row and used on resume.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.clock import utc_now
from core.errors import PeriodClosed, SettlementRunning, check
from core.ledger import system_account
from core.locks import lock_ownership, lock_period_flattrs
from core.periods import MIN_YEAR, Period
from core.schema import settlements
from core.settings import Settings
from core.settlement import notify, partitions
from core.settlement import statements as sql
from core.settlement.order import ensure_settled_in_order
from core.summaries import Terms


@dataclass(frozen=True)
class Rules:
    fee_bps: int
    minimum_micros: int
    hold_months: int
    idle_budget: str


# A click stamped just before a month ends may still be on its way to the database (the
# gateway's statements time out after 5 s). Were it to land while the month is split, the
# count of a giver's flattrs and the split would disagree; a minute's wait rules that out.
SETTLE_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[AsyncConnection, Period, Rules, datetime, Settings], Awaitable[None]]


async def add_subscribed_flattrs(conn: AsyncConnection, period: Period, rules: Rules, now,
                                 settings: Settings):
    await conn.execute(
        sql.ADD_SUBSCRIBED_FLATTRS,
        {"period": str(period), "period_start": period.starts_at, "period_end": period.ends_at},
    )


async def charge_and_split(conn: AsyncConnection, period: Period, rules: Rules, now,
                           settings: Settings):
    # The month's flattrs and who owns what decide both the count n and each share: neither
    # may move in between. Always in this order (a flattr takes its month's lock first).
    await lock_period_flattrs(conn, period, exclusive=True)
    await lock_ownership(conn, exclusive=True)
    params = {"period": str(period), "minimum": rules.minimum_micros, "fee_bps": rules.fee_bps,
              "period_end": period.ends_at}
    await conn.execute(sql.RECORD_CHARGES, params)
    if conn.dialect.name == "postgresql":
        await conn.execute(text("ANALYZE charges"))  # it just grew by a row per giver
        await partitions.create_from(conn, period, sql.SPLIT_SHARES, params)
        await partitions.attach(conn, period)
    else:
        await conn.execute(sql.RECORD_SHARES, params)
    await _post_charges(conn, period, now, status="funded", name="charge")
    if rules.idle_budget == "charity":
        await conn.execute(sql.RECORD_IDLE_CHARGES, params)
        await _post_charges(conn, period, now, status="idle", name="idle")


async def _tune_planner(conn: AsyncConnection, memory: str) -> None:
    """Sorts and hashes over a whole month fit in memory instead of spilling to disk, and
    index order is priced as what it is on a cached or solid-state database: the default
    random_page_cost (4, for seeking disks) picks hash aggregates of a whole month of
    flattrs where their (period, member) index gives the groups in order, linear in size."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SET LOCAL work_mem = '{memory}'"))
        await conn.execute(text(f"SET LOCAL maintenance_work_mem = '{memory}'"))  # indexes
        await conn.execute(text("SET LOCAL random_page_cost = 1.1"))
        # Compiling a statement run once a month costs more than it saves: at 1M flattrs
        # JIT took 0.1-0.3 s of each run, and a misestimated join cost set off its slowest
        # (inlining and optimising) mode.
        await conn.execute(text("SET LOCAL jit = off"))


async def _post_charges(conn: AsyncConnection, period: Period, now, *, status: str, name: str):
    """giving −charge of each giver, fees +their sum, the rest to the pool or to charity."""
    pool = "charity" if status == "idle" else "unclaimed"
    params = {"period": str(period), "status": status}

    async def post(transaction: int) -> None:
        await conn.execute(sql.CHARGE_POSTINGS, {**params, "transaction": transaction})
        await conn.execute(sql.FEE_POSTING, {**params, "transaction": transaction,
                                             "fees_account": await system_account(conn, "fees")})

    await _record_stage_transaction(conn, period, now, name, post, pool)


async def pay_owners(conn: AsyncConnection, period: Period, rules: Rules, now,
                     settings: Settings):
    await _post_shares(
        conn, period, now, name="revenue", member="owner_id", account_kind="revenue",
        condition="s.period = :period AND s.state = 'paid'",
    )


async def release_held_shares(conn: AsyncConnection, period: Period, rules: Rules, now,
                              settings: Settings):
    resolved_by = f"settle:{period}:release"
    await conn.execute(
        sql.RELEASE_HELD_SHARES, {"period": str(period), "resolved_by": resolved_by}
    )
    await _post_shares(
        conn, period, now, name="release", member="owner_id", account_kind="revenue",
        condition="s.resolved_by = :resolved_by", resolved_by=resolved_by,
    )


async def return_expired_shares(conn: AsyncConnection, period: Period, rules: Rules, now,
                                settings: Settings):
    resolved_by = f"settle:{period}:return"
    if period.months_since(Period(MIN_YEAR, 1)) < rules.hold_months:
        return  # no month is old enough yet: nothing was held that long
    cutoff = period.plus_months(-rules.hold_months)
    await conn.execute(
        sql.RETURN_EXPIRED_SHARES,
        {"period": str(period), "resolved_by": resolved_by, "cutoff": str(cutoff)},
    )
    await _post_shares(
        conn, period, now, name="return", member="giver_id", account_kind="giving",
        condition="s.resolved_by = :resolved_by", resolved_by=resolved_by,
    )


async def _post_shares(
    conn: AsyncConnection, period: Period, now, *, name: str, member: str, account_kind: str,
    condition: str, resolved_by: str | None = None,
):
    """The sum of the shares of each member to their account, from the pool."""
    params = {"period": str(period), "account_kind": account_kind}
    if resolved_by is not None:
        params["resolved_by"] = resolved_by

    async def post(transaction: int) -> None:
        await conn.execute(sql.share_postings(member, condition),
                           {**params, "transaction": transaction})

    await _record_stage_transaction(conn, period, now, name, post, "unclaimed")


async def _record_stage_transaction(
    conn: AsyncConnection, period: Period, now, name: str,
    post: Callable[[int], Awaitable[None]], pool: str,
) -> None:
    """One balanced ledger transaction for the stage: the member postings `post` writes and
    the pool posting that balances them; none at all when nothing moves."""
    transaction = await conn.scalar(
        sql.OPEN_TRANSACTION, {"period": str(period), "name": name,
                               "kind": f"settlement.{name}", "now": now}
    )
    await post(transaction)
    if not await conn.scalar(sql.HAS_POSTINGS, {"transaction": transaction}):
        await conn.execute(sql.DROP_EMPTY_TRANSACTION, {"transaction": transaction})
        return
    await conn.execute(sql.BALANCING_POSTING, {"transaction": transaction,
                                               "account": await system_account(conn, pool)})
    await conn.execute(sql.APPLY_POSTINGS, {"transaction": transaction})


async def write_summaries(conn: AsyncConnection, period: Period, rules: Rules, now,
                          settings: Settings):
    terms = Terms(period, settings.currency, settings.public_url, rules.minimum_micros,
                  rules.hold_months, settings.payout_threshold)
    if conn.dialect.name != "postgresql":
        await notify.write_summaries(conn, terms, now)
        return
    # A second connection gathers the creators' figures while this one gathers the givers'.
    # It first gives the planner statistics of the month's shares, which this settlement made,
    # committed at once so that both connections plan with them.
    async with conn.engine.connect() as reader:
        await notify.analyze_shares(reader, period)
        await reader.commit()
        await _tune_planner(reader, settings.settlement_memory)
        await notify.write_summaries(conn, terms, now, reader)


STAGES: tuple[Stage, ...] = (
    Stage("add subscribed flattrs", add_subscribed_flattrs),
    Stage("charge and split", charge_and_split),
    Stage("pay owners", pay_owners),
    Stage("release held shares", release_held_shares),
    Stage("return expired shares", return_expired_shares),
    Stage("write summaries", write_summaries),
)


@dataclass(frozen=True)
class SettlementResult:
    period: Period
    stages_run: int
    already_settled: bool


ProgressCallback = Callable[[int, str], None]


async def settle_period(
    engine: AsyncEngine,
    period: Period,
    settings: Settings,
    *,
    now: datetime | None = None,
    on_stage: ProgressCallback | None = None,
) -> SettlementResult:
    """Settle a period that has ended; resume where a killed run stopped; no-op when done."""
    now = now or utc_now()
    if not period.has_ended(now - SETTLE_AFTER):
        raise PeriodClosed(
            f"{period} has not ended yet: it can be settled from "
            f"{period.ends_at + SETTLE_AFTER:%Y-%m-%d %H:%M} UTC"
        )
    rules = await _begin(engine, period, settings, now)
    stages_run = 0
    for number, stage in enumerate(STAGES, start=1):
        async with engine.begin() as conn:
            await _tune_planner(conn, settings.settlement_memory)
            reached = await _lock_run(conn, period)
            if reached >= number:
                continue
            check(reached == number - 1, f"settlement of {period} skipped a stage")
            await stage.run(conn, period, rules, now, settings)
            await conn.execute(
                update(settlements).where(settlements.c.period == str(period)).values(
                    stage=number,
                    **({"status": "settled", "finished_at": now} if number == len(STAGES) else {}),
                )
            )
            stages_run += 1
        if on_stage:
            on_stage(number, stage.name)
    return SettlementResult(period, stages_run, already_settled=stages_run == 0)


async def _begin(engine: AsyncEngine, period: Period, settings: Settings, now) -> Rules:
    async with engine.begin() as conn:
        row = (
            await conn.execute(select(settlements).where(settlements.c.period == str(period)))
        ).first()
        if row is None:
            await ensure_settled_in_order(conn, period)
            await conn.execute(
                sql.START_SETTLEMENT,
                {
                    "period": str(period), "fee_bps": settings.fee_bps,
                    "minimum": settings.minimum_budget, "hold_months": settings.hold_months,
                    "idle_budget": settings.idle_budget, "now": now,
                },
            )
            row = (
                await conn.execute(select(settlements).where(settlements.c.period == str(period)))
            ).first()
    return Rules(row.fee_bps, row.minimum_budget_micros, row.hold_months, row.idle_budget)


async def _lock_run(conn: AsyncConnection, period: Period) -> int:
    """The stage reached, with the run's row locked against a concurrent settler."""
    query = select(settlements.c.stage).where(settlements.c.period == str(period))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(nowait=True)
    try:
        return await conn.scalar(query)
    except Exception as error:
        if "could not obtain lock" in str(error) or "LockNotAvailable" in type(error).__name__:
            raise SettlementRunning(f"{period} is being settled by another process") from error
        raise


async def settlement_status(conn: AsyncConnection, period: Period) -> str:
    """open, settling or settled."""
    status = await conn.scalar(
        select(settlements.c.status).where(settlements.c.period == str(period))
    )
    return status or "open"
