"""The monthly summaries' figures: each member's month, gathered for every member at once by
a few set-based statements. core/summary_text.py puts them in words; the last stage of the
settlement (core/settlement/run.py) queues them in the outbox.

A member gets one when they had a charge that month (funded, unfunded or idle), received
revenue in it (their things' shares paid, or held shares released to them), had shares held
for them, or got held shares of theirs back. The figures are those of the member's statement
(core/statements.py): the same charges, shares and ledger transactions.
"""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.periods import Period
from core.statements import RECEIVING_KINDS

TOP_THINGS = 3  # things listed per section; the rest are counted

_RELEASE_KINDS = tuple(kind for kind in RECEIVING_KINDS if kind != "settlement.revenue")
_RELEASES = ", ".join(f"'{kind}'" for kind in _RELEASE_KINDS)


@dataclass(frozen=True)
class Terms:
    """What a summary needs besides the figures: the deployment's currency and address, and
    the rules the month was settled by."""

    period: Period
    currency: str
    public_url: str
    minimum_micros: int
    hold_months: int
    payout_threshold_micros: int

    @property
    def statement_url(self) -> str:
        return f"{self.public_url}/statements/{self.period}"


class Top(NamedTuple):  # a tuple: the collector stops tracking it, and there are many
    rank: int
    key: str
    creator: str | None  # the owner's handle; None for a thing nobody has claimed
    amount_micros: int
    flattrs: int = 1


@dataclass(slots=True)
class Giving:
    status: str  # funded, unfunded or idle (the budget of a month without flattrs, to charity)
    flattr_count: int
    budget_micros: int
    balance_micros: int
    charged_micros: int
    fee_micros: int
    net_micros: int
    held_micros: int = 0  # of this month's shares, those held (for creators yet to claim)
    top: list[Top] = field(default_factory=list)


@dataclass(slots=True)
class Receiving:
    paid_micros: int = 0  # this month's shares of the member's things
    released_micros: int = 0  # held shares of earlier months, released to them in this one
    flattrs: int = 0
    givers: int = 0
    things: int = 0  # that received something
    held_micros: int = 0  # this month's shares held for them: they were not an active giver
    held_flattrs: int = 0
    revenue_micros: int = 0
    top: list[Top] = field(default_factory=list)

    @property
    def received_micros(self) -> int:
        return self.paid_micros + self.released_micros


@dataclass(slots=True)
class Figures:
    member_id: int
    handle: str
    giving: Giving | None = None
    receiving: Receiving | None = None
    returned_micros: int = 0  # shares held too long, back to the member's giving balance
    returned_flattrs: int = 0


# --- the statements: each runs once over the whole month ---------------------------------

# The givers of the month, with what of their shares is held.
GIVERS = text("""
SELECT c.member_id, m.handle, c.status, c.flattr_count, c.budget_micros, c.balance_micros,
       c.charge_micros, c.fee_micros, c.net_micros, COALESCE(h.held, 0) AS held
FROM charges c
JOIN members m ON m.id = c.member_id
LEFT JOIN (SELECT s.giver_id, CAST(SUM(s.amount_micros) AS BIGINT) AS held FROM shares s
           WHERE s.period = :period AND s.state = 'held' GROUP BY s.giver_id) h
       ON h.giver_id = c.member_id
WHERE c.period = :period
""")

# Each funded giver's first shares, with their things and creators. A giver's shares are
# equal but for a micro, so the list is of the things flattred first: in the order of the
# shares' key (giver, flattr), which PostgreSQL reads from its index instead of sorting.
GIVEN = text("""
SELECT r.giver_id, r.rank, t.key, o.handle, r.amount_micros
FROM (SELECT s.giver_id, s.thing_id, s.owner_id, s.amount_micros,
             ROW_NUMBER() OVER (PARTITION BY s.giver_id ORDER BY s.flattr_id) AS rank
      FROM shares s
      WHERE s.period = :period) r
JOIN things t ON t.id = r.thing_id
LEFT JOIN members o ON o.id = r.owner_id
WHERE r.rank <= :top
""")

# What reached each member's revenue in the month: its paid shares, and the shares each
# release of the month resolved (a release transaction's key is its shares' resolved_by).
# Their sums are the revenue postings of those transactions (core.checks proves it).
_RECEIVED_SHARES = f"""
SELECT s.owner_id, s.giver_id, s.thing_id, s.amount_micros, s.state FROM shares s
WHERE s.period = :period AND s.state = 'paid'
UNION ALL
SELECT s.owner_id, s.giver_id, s.thing_id, s.amount_micros, s.state
FROM ledger_transactions t JOIN shares s ON s.resolved_by = t.key
WHERE t.period = :period AND t.kind IN ({_RELEASES}) AND s.state = 'released'
"""

RECEIVED = text(f"""
SELECT r.owner_id, m.handle, a.balance_micros, r.paid, r.released, r.flattrs, r.givers
FROM (SELECT x.owner_id,
             CAST(SUM(CASE WHEN x.state = 'paid' THEN x.amount_micros ELSE 0 END)
                  AS BIGINT) AS paid,
             CAST(SUM(CASE WHEN x.state = 'released' THEN x.amount_micros ELSE 0 END)
                  AS BIGINT) AS released,
             COUNT(*) AS flattrs, COUNT(DISTINCT x.giver_id) AS givers
      FROM ({_RECEIVED_SHARES}) x GROUP BY x.owner_id) r
JOIN members m ON m.id = r.owner_id
JOIN accounts a ON a.member_id = r.owner_id AND a.kind = 'revenue'
""")

# Each creator's things that received the most, and how many things received.
RECEIVED_TOP = text(f"""
SELECT g.owner_id, g.rank, g.things, t.key, g.total, g.flattrs
FROM (SELECT x.owner_id, x.thing_id, CAST(SUM(x.amount_micros) AS BIGINT) AS total,
             COUNT(*) AS flattrs, COUNT(*) OVER (PARTITION BY x.owner_id) AS things,
             ROW_NUMBER() OVER (PARTITION BY x.owner_id
                                ORDER BY SUM(x.amount_micros) DESC, x.thing_id) AS rank
      FROM ({_RECEIVED_SHARES}) x GROUP BY x.owner_id, x.thing_id) g
JOIN things t ON t.id = g.thing_id
WHERE g.rank <= :top
""")

# Shares of the month held for owners who were not active givers of it.
HELD_FOR = text("""
SELECT h.owner_id, m.handle, a.balance_micros, h.held, h.flattrs
FROM (SELECT s.owner_id, CAST(SUM(s.amount_micros) AS BIGINT) AS held, COUNT(*) AS flattrs
      FROM shares s
      WHERE s.period = :period AND s.state = 'held' AND s.owner_id IS NOT NULL
      GROUP BY s.owner_id) h
JOIN members m ON m.id = h.owner_id
JOIN accounts a ON a.member_id = h.owner_id AND a.kind = 'revenue'
""")

# Shares held too long, returned to their givers by this month's settlement.
RETURNED = text("""
SELECT r.giver_id, m.handle, r.returned, r.flattrs
FROM (SELECT s.giver_id, CAST(SUM(s.amount_micros) AS BIGINT) AS returned, COUNT(*) AS flattrs
      FROM shares s WHERE s.resolved_by = :resolved_by GROUP BY s.giver_id) r
JOIN members m ON m.id = r.giver_id
""")


# --- gathering ------------------------------------------------------------------------------


class _Month:
    """The members' figures, filled in by the rows of each statement in turn."""

    def __init__(self) -> None:
        self.figures: dict[int, Figures] = {}

    def member(self, member_id: int, handle: str) -> Figures:
        found = self.figures.get(member_id)
        if found is None:
            found = self.figures[member_id] = Figures(member_id, handle)
        return found

    def receiving(self, member_id: int, handle: str, revenue_micros: int) -> Receiving:
        member = self.member(member_id, handle)
        if member.receiving is None:
            member.receiving = Receiving(revenue_micros=revenue_micros)
        return member.receiving

    def givers(self, rows) -> None:
        for (member_id, handle, status, flattrs, budget, balance, charged, fee, net,
             held) in rows:
            self.member(member_id, handle).giving = Giving(
                status, flattrs, budget, balance, charged, fee, net, held)

    def given(self, rows) -> None:
        figures = self.figures
        for giver_id, rank, key, creator, amount in rows:
            figures[giver_id].giving.top.append(Top(rank, key, creator, amount))

    def received(self, rows) -> None:
        for member_id, handle, revenue, paid, released, flattrs, givers in rows:
            found = self.receiving(member_id, handle, revenue)
            found.paid_micros, found.released_micros = paid, released
            found.flattrs, found.givers = flattrs, givers

    def received_top(self, rows) -> None:
        figures = self.figures
        for member_id, rank, things, key, total, flattrs in rows:
            member = figures.get(member_id)
            if member is None or member.receiving is None:
                continue  # a release committed between two statements: next month's
            member.receiving.things = things
            member.receiving.top.append(Top(rank, key, None, total, flattrs))

    def held_for(self, rows) -> None:
        for member_id, handle, revenue, held, flattrs in rows:
            found = self.receiving(member_id, handle, revenue)
            found.held_micros, found.held_flattrs = held, flattrs

    def returned(self, rows) -> None:
        for member_id, handle, returned, flattrs in rows:
            found = self.member(member_id, handle)
            found.returned_micros, found.returned_flattrs = returned, flattrs

    def finished(self) -> dict[int, Figures]:
        """Tops in the order the window functions ranked them (rows come in any order)."""
        for member in self.figures.values():
            for section in (member.giving, member.receiving):
                if section is not None and len(section.top) > 1:
                    section.top.sort(key=_rank)
        return self.figures


def _rank(top: Top) -> int:
    return top.rank


async def gather(conn: AsyncConnection, period: Period,
                 reader: AsyncConnection | None = None) -> dict[int, Figures]:
    """Every member's figures of the month, by member id. With a `reader` (a connection
    of its own) the creators' figures are gathered on it while the givers' are on `conn`:
    the statements read only what the settlement's earlier stages committed."""
    p = str(period)
    month = _Month()
    givers: list[Step] = [
        (GIVERS, {"period": p}, month.givers),
        (GIVEN, {"period": p, "top": TOP_THINGS}, month.given),
        (RETURNED, {"resolved_by": f"settle:{p}:return"}, month.returned),
    ]
    creators: list[Step] = [
        (RECEIVED, {"period": p}, month.received),
        (RECEIVED_TOP, {"period": p, "top": TOP_THINGS}, month.received_top),
        (HELD_FOR, {"period": p}, month.held_for),
    ]
    if reader is None:
        await _run_overlapped(conn, givers + creators)
    else:
        async with asyncio.TaskGroup() as both:
            both.create_task(_run_overlapped(conn, givers))
            both.create_task(_run_overlapped(reader, creators))
    return month.finished()


Step = tuple[TextClause, dict[str, Any], Callable[[Sequence[Sequence[Any]]], None]]


async def _run_overlapped(conn: AsyncConnection, steps: list[Step]) -> None:
    """Run the statements in turn, each one's rows taken in while the database runs the
    next: the two work at the same time."""
    fetch = await _fetcher(conn)
    pending = asyncio.ensure_future(fetch(*steps[0][:2]))
    try:
        for index, (_, _, take) in enumerate(steps):
            rows = await pending
            if index + 1 < len(steps):
                pending = asyncio.ensure_future(fetch(*steps[index + 1][:2]))
                await asyncio.sleep(0)  # the next statement is sent before the rows are read
            take(rows)
    except BaseException:
        await asyncio.wait([pending])  # it must not go on using the connection
        if not pending.cancelled():
            pending.exception()  # the error raised here is the one to tell
        raise


async def _fetcher(conn: AsyncConnection):
    """All rows of a statement, as tuples. On PostgreSQL straight from asyncpg, which takes
    half the time of SQLAlchemy's rows for the several hundred thousand of a month."""
    if conn.dialect.name != "postgresql":
        async def fetch(statement: TextClause, params: dict[str, Any]):
            return (await conn.execute(statement, params)).all()
        return fetch
    driver = (await conn.get_raw_connection()).driver_connection

    async def fetch_raw(statement: TextClause, params: dict[str, Any]):
        compiled = statement.compile(dialect=conn.dialect)
        return await driver.fetch(str(compiled), *(params[name] for name in compiled.positiontup))
    return fetch_raw
