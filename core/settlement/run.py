"""Settling a period: guarded, idempotent stages (the payday mechanism of liberapay).

A row in `settlements` carries the stage reached. Each stage runs in one database
transaction that also advances that counter, so a run killed at any point rolls back to
the last finished stage and a new run resumes there. The rules a run started with
(fee, minimum, hold window, idle policy) are stored on that row and used on resume.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.clock import utc_now
from core.errors import PeriodClosed, SettlementRunning, check
from core.ledger import system_account
from core.locks import lock_ownership
from core.periods import Period
from core.schema import settlements
from core.settings import Settings
from core.settlement import statements as sql


@dataclass(frozen=True)
class Rules:
    fee_bps: int
    minimum_micros: int
    hold_months: int
    idle_budget: str


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[AsyncConnection, Period, Rules, datetime], Awaitable[None]]


async def add_subscribed_flattrs(conn: AsyncConnection, period: Period, rules: Rules, now):
    await conn.execute(
        sql.ADD_SUBSCRIBED_FLATTRS, {"period": str(period), "period_start": period.starts_at}
    )


async def charge_and_split(conn: AsyncConnection, period: Period, rules: Rules, now):
    # Who owns what decides both the count n and each share: it must not move in between.
    await lock_ownership(conn, exclusive=True)
    params = {"period": str(period), "minimum": rules.minimum_micros, "fee_bps": rules.fee_bps}
    await conn.execute(sql.RECORD_CHARGES, params)
    await conn.execute(sql.RECORD_SHARES, params)
    await _post_charges(conn, period, now, status="funded", name="charge")
    if rules.idle_budget == "charity":
        await conn.execute(sql.RECORD_IDLE_CHARGES, params)
        await _post_charges(conn, period, now, status="idle", name="idle")


async def _post_charges(conn: AsyncConnection, period: Period, now, *, status: str, name: str):
    """giving −charge, fees +fee, and the rest to the pool (unclaimed) or to charity."""
    kind = f"settlement.{name}"
    params = {"period": str(period), "status": status, "kind": kind, "name": name, "now": now}
    await conn.execute(sql.CHARGE_TRANSACTIONS, params)
    await conn.execute(
        sql.CHARGE_POSTINGS, {**params, "fees_account": await system_account(conn, "fees")}
    )
    pool = "charity" if status == "idle" else "unclaimed"
    await _balance_and_apply(conn, period, kind, await system_account(conn, pool))


async def pay_owners(conn: AsyncConnection, period: Period, rules: Rules, now):
    await _post_shares(
        conn, period, now, name="revenue", member="owner_id", account_kind="revenue",
        condition="s.period = :period AND s.state = 'paid'",
    )


async def release_held_shares(conn: AsyncConnection, period: Period, rules: Rules, now):
    resolved_by = f"settle:{period}:release"
    await conn.execute(
        sql.RELEASE_HELD_SHARES, {"period": str(period), "resolved_by": resolved_by}
    )
    await _post_shares(
        conn, period, now, name="release", member="owner_id", account_kind="revenue",
        condition="s.resolved_by = :resolved_by", resolved_by=resolved_by,
    )


async def return_expired_shares(conn: AsyncConnection, period: Period, rules: Rules, now):
    resolved_by = f"settle:{period}:return"
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
    """One transaction per member: the sum of the shares to their account, from the pool."""
    kind = f"settlement.{name}"
    params = {
        "period": str(period), "kind": kind, "name": name, "now": now,
        "account_kind": account_kind,
    }
    if resolved_by is not None:
        params["resolved_by"] = resolved_by
    transactions, postings = sql.share_statements(member, condition)
    await conn.execute(transactions, params)
    await conn.execute(postings, params)
    await _balance_and_apply(conn, period, kind, await system_account(conn, "unclaimed"))


async def _balance_and_apply(conn: AsyncConnection, period: Period, kind: str, account: int):
    params = {"period": str(period), "kind": kind}
    await conn.execute(sql.BALANCING_POSTINGS, {**params, "account": account})
    await conn.execute(sql.APPLY_POSTINGS, params)


STAGES: tuple[Stage, ...] = (
    Stage("add subscribed flattrs", add_subscribed_flattrs),
    Stage("charge and split", charge_and_split),
    Stage("pay owners", pay_owners),
    Stage("release held shares", release_held_shares),
    Stage("return expired shares", return_expired_shares),
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
    if not period.has_ended(now):
        raise PeriodClosed(
            f"{period} has not ended yet: it can be settled from {period.ends_at:%Y-%m-%d}"
        )
    rules = await _begin(engine, period, settings, now)
    stages_run = 0
    for number, stage in enumerate(STAGES, start=1):
        async with engine.begin() as conn:
            reached = await _lock_run(conn, period)
            if reached >= number:
                continue
            check(reached == number - 1, f"settlement of {period} skipped a stage")
            await stage.run(conn, period, rules, now)
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
