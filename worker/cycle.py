"""One round of the worker: everything due at an instant, each piece of work in turn.

`flattr worker --once --now …` runs one round at that instant (cron, tests); without --now,
and in the long-running worker, which runs a round on a timer, the round goes by the clock.
A piece of work that fails is logged and reported; the pieces after it still run (e-mail
goes out while a settlement waits for an operator).
"""

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import utc_now
from core.errors import check
from core.periods import Period
from core.reminders import queue_reminders, reminders_open
from core.settings import Settings
from worker.done import Done, failure, logged
from worker.mail import send_email
from worker.settling import settle_due

StopAsked = Callable[[], bool]


def _never() -> bool:
    return False


async def _settle(engine: AsyncEngine, settings: Settings, now: datetime | None,
                  should_stop: StopAsked) -> list[Done]:
    return await settle_due(engine, settings, now or utc_now(), should_stop)


async def _remind(engine: AsyncEngine, settings: Settings, now: datetime | None,
                  _should_stop: StopAsked) -> list[Done]:
    now = now or utc_now()
    period = Period.of(now)
    if not reminders_open(period, now):
        return []
    async with engine.begin() as conn:
        queued = await queue_reminders(conn, settings, now)
    if not queued:
        return []
    return [logged(Done("reminders", f"reminders {period}: {queued} queued",
                        {"period": str(period), "queued": queued}))]


async def _email(engine: AsyncEngine, settings: Settings, now: datetime | None,
                 should_stop: StopAsked) -> list[Done]:
    sent = await send_email(engine, settings, now, should_stop)
    return [sent] if sent is not None else []


Piece = Callable[[AsyncEngine, Settings, datetime | None, StopAsked], Awaitable[list[Done]]]
PIECES: tuple[tuple[str, Piece], ...] = (
    ("settle", _settle),
    ("reminders", _remind),
    ("email", _email),
)


async def run_due(engine: AsyncEngine, settings: Settings, now: datetime | None = None, *,
                  should_stop: StopAsked = _never) -> list[Done]:
    """Do what is due at `now` (UTC; None: by the clock): settle the months that may be
    settled, queue this month's reminders, send e-mail. By the clock, each piece reads it
    when it starts, and e-mail at each lease, acknowledgement and failure: a lease taken
    after a long settlement runs its full time. `should_stop` is asked between pieces of
    work: the piece in hand is finished, the rest is left to the next round."""
    check(now is None or now.tzinfo is not None, "the worker's instant must be timezone-aware")
    done: list[Done] = []
    for work, piece in PIECES:
        if should_stop():
            break
        try:
            done += await piece(engine, settings, now, should_stop)
        except Exception as error:
            done.append(failure(work, work, error))
    return done
