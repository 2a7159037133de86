"""What the tests of card top-ups look at and set up in the database: the Checkout sessions
opened, and a member who owes money as a card refund leaves one (their last month was given
away at its settlement, then every funding of theirs was refunded in full, so what giving no
longer held became their debt: core/funding/reversals.py)."""

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core import flattrs
from core.funding import owed_by
from core.funding.reversals import reverse
from core.periods import Period
from core.schema import fundings, stripe_checkouts
from core.settings import Settings
from core.settlement.run import settle_period


async def checkouts(engine: AsyncEngine) -> list[tuple[str, int, int]]:
    """(session id, member id, amount in micros) of every Checkout session opened."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(stripe_checkouts.c.session_id,
                                         stripe_checkouts.c.member_id,
                                         stripe_checkouts.c.amount_micros))
        return [tuple(row) for row in rows]


async def put_in_debt(engine: AsyncEngine, settings: Settings, member_id: int) -> int:
    """Settle last month with a flattr of the member's (their budget is charged), then refund
    their fundings: the debt, in micros (what the settlement had given)."""
    earlier = Period.current().previous()
    async with engine.begin() as conn:
        await flattrs.flattr(conn, member_id, "https://blog.example/given-away", period=earlier)
    await settle_period(engine, earlier, settings)
    async with engine.begin() as conn:
        found = await conn.execute(select(fundings.c.id, fundings.c.amount_micros)
                                   .where(fundings.c.member_id == member_id))
        for funding_id, amount in found.all():
            await reverse(conn, funding_id, amount, kind="refund",
                          reference=f"re_{uuid.uuid4().hex}")
        return await owed_by(conn, member_id)
