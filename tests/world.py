"""A small world of members, things and flattrs, driven through the core's services."""

import itertools
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core import claims, flattrs, funding, ledger, members
from core.checks import run_checks
from core.clock import utc_now
from core.money import parse_amount
from core.periods import Period
from core.schema import shares
from core.settings import Settings
from core.settlement import settle_period
from core.statements import balances_of

_keys = itertools.count(1)
JOINED = datetime(2025, 12, 1, tzinfo=UTC)


class World:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.ids: dict[str, int] = {}

    async def member(
        self, handle: str, *, credit: str | None = None, budget: str | None = None,
        joined: datetime = JOINED,
    ):
        """A member who joined (and set their budget) at `joined`: by default before every
        month the scenarios settle."""
        async with self.engine.begin() as conn:
            member = await members.create_member(conn, handle, now=joined)
            self.ids[handle] = member.id
            if credit:
                await funding.credit(
                    conn, member.id, parse_amount(credit), idempotency_key=f"w{next(_keys)}"
                )
            if budget:
                await members.set_budget(conn, member.id, parse_amount(budget), self.settings,
                                         now=joined)
        return member.id

    async def claim(self, handle: str, host: str, prefix: str | None = None) -> None:
        async with self.engine.begin() as conn:
            claim = await claims.create_claim(conn, self.ids[handle], host, prefix)
            await claims.mark_verified(conn, claim.id)

    async def link(self, handle: str, identity: str) -> None:
        async with self.engine.begin() as conn:
            await members.link_identity(conn, self.ids[handle], identity)

    async def flattr(
        self, handle: str, key: str, period: str, *, at: datetime | None = None,
        author: str | None = None,
    ):
        async with self.engine.begin() as conn:
            return await flattrs.flattr(
                conn, self.ids[handle], key, period=Period.parse(period), now=at,
                author_identity=author,
            )

    async def settle(self, period: str, now: datetime | None = None):
        return await settle_period(self.engine, Period.parse(period), self.settings, now=now)

    async def balances(self, handle: str) -> dict[str, int]:
        async with self.engine.connect() as conn:
            return await balances_of(conn, self.ids[handle])

    async def system_balance(self, kind: str) -> int:
        async with self.engine.connect() as conn:
            return await ledger.balance(conn, await ledger.system_account(conn, kind))

    async def share_states(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(shares.c.state, func.sum(shares.c.amount_micros)).group_by(shares.c.state)
            )
            return {state: total for state, total in rows}

    async def violations(self) -> dict[str, list]:
        async with self.engine.connect() as conn:
            return {f.invariant.name: f.violations for f in await run_checks(conn) if not f.holds}


def now() -> datetime:
    return utc_now()
