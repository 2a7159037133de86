"""The channels a member chose for their messages. The web inbox is always on."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.dialect import insert_ignoring_conflicts
from core.errors import DomainError
from core.members import member_by_id
from core.outbox import CHANNEL_DEFAULTS
from core.schema import identities, notification_settings

CHAT_NETWORKS = ("telegram", "discord")


class NoEmailAddress(DomainError):
    code = "no_email_address"


async def settings_of(conn: AsyncConnection, member_id: int) -> dict:
    """{"web": True, "telegram": …, "discord": …, "email": …, "reminders": …}, the e-mail
    address, and each linked chat identity with whether messages reach it."""
    member = await member_by_id(conn, member_id)
    row = (await conn.execute(
        select(notification_settings).where(notification_settings.c.member_id == member_id)
    )).first()
    chosen = {name: (getattr(row, name) if row else default)
              for name, default in CHANNEL_DEFAULTS.items()}
    linked = await conn.execute(
        select(identities.c.identity, identities.c.unreachable_at,
               identities.c.unreachable_reason)
        .where(identities.c.member_id == member_id).order_by(identities.c.id)
    )
    return {
        "web": True, **chosen, "email_address": member.email,
        "identities": [
            {"identity": r.identity, "reachable": r.unreachable_at is None,
             "unreachable_reason": r.unreachable_reason}
            for r in linked
        ],
    }


async def choose(conn: AsyncConnection, member_id: int, changes: dict[str, bool],
                 now: datetime | None = None) -> dict:
    """Turn channels on or off. Turning a chat network on makes its identities reachable
    again (the member unblocked the bot); e-mail needs an address."""
    unknown = set(changes) - set(CHANNEL_DEFAULTS)
    if unknown:
        raise DomainError(f"unknown channel {sorted(unknown)[0]!r}")
    current = await settings_of(conn, member_id)
    if changes.get("email") and not current["email_address"]:
        raise NoEmailAddress("there is no e-mail address to send to: give one first")
    now = now or utc_now()
    values = {name: changes.get(name, current[name]) for name in CHANNEL_DEFAULTS}
    insert = insert_ignoring_conflicts(conn, notification_settings, ["member_id"])
    await conn.execute(insert.values(member_id=member_id, updated_at=now, **values))
    await conn.execute(
        update(notification_settings).where(notification_settings.c.member_id == member_id)
        .values(updated_at=now, **values)
    )
    for network in CHAT_NETWORKS:
        if changes.get(network):
            await conn.execute(
                update(identities)
                .where(identities.c.member_id == member_id,
                       identities.c.identity.startswith(f"{network}:"))
                .values(unreachable_at=None, unreachable_reason=None)
            )
    return await settings_of(conn, member_id)
