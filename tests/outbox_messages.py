"""Messages put into the outbox as the settlement would, for the tests of their delivery."""

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core import members, outbox
from core.clock import utc_now
from core.schema import outbox_deliveries


def message(member_id: int, period: str = "2026-10", kind: str = "summary") -> outbox.Message:
    return outbox.Message(
        member_id=member_id, period=period, kind=kind, subject=f"Your Flattr month {period}",
        data={"period": period, "charged_micros": 5_000_000, "flattrs": 3},
        text=f"{period}: 5.00 EUR shared among 3 things", html=f"<p>{period}: 5.00 EUR</p>",
    )


async def queue(engine: AsyncEngine, messages: list[outbox.Message]) -> int:
    async with engine.begin() as conn:
        return await outbox.queue_messages(conn, messages)


async def chat_members(engine: AsyncEngine, count: int, network: str = "telegram",
                       prefix: str = "chatter") -> list[int]:
    """`count` members, each with a linked chat identity <network>:<1000 + n>."""
    made = []
    async with engine.begin() as conn:
        for n in range(count):
            member = await members.create_member(conn, f"{prefix}{n}")
            await members.link_identity(conn, member.id, f"{network}:{1000 + n}")
            made.append(member.id)
    return made


async def lease_ends(engine: AsyncEngine, delivery_ids: list[int] | None = None) -> None:
    """The clock passes the end of the leases and back-offs of these deliveries (or all)."""
    query = update(outbox_deliveries).values(available_at=utc_now() - timedelta(seconds=1))
    if delivery_ids is not None:
        query = query.where(outbox_deliveries.c.id.in_(delivery_ids))
    async with engine.begin() as conn:
        await conn.execute(query)


async def delivery_states(engine: AsyncEngine) -> dict[int, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox_deliveries.c.id, outbox_deliveries.c.state))
        return dict(rows.all())
