"""What the chat bots' tests look at in the database: the flattrs made, with their owners."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.schema import flattrs, members, things


async def flattred(engine: AsyncEngine) -> list[tuple[str, str, str | None]]:
    """(giver's handle, thing key, owner's handle or None while held) of every flattr."""
    owners = members.alias()
    query = (select(members.c.handle, things.c.key, owners.c.handle)
             .select_from(flattrs.join(things, things.c.id == flattrs.c.thing_id)
                          .join(members, members.c.id == flattrs.c.member_id)
                          .outerjoin(owners, owners.c.id == things.c.owner_id))
             .order_by(flattrs.c.id))
    async with engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(query)]
