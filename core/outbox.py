"""The outbox: what members are told, and its delivery to each channel they chose.

A message (`outbox`) is written once per member, period and kind. Each chat identity and
e-mail address it goes to gets a delivery (`outbox_deliveries`), which a sender leases,
then acknowledges or fails. Delivery is at least once: a lease that runs out hands the
message out again, so a sender that dies between the platform's answer and its
acknowledgement sends it twice; nothing else does.

Each lease counts as a try. A failed try waits longer each time (exponential back-off,
never less than the sender's `retry_after`); after `MAX_ATTEMPTS` tries the delivery is
`dead`, listed for admins, who may retry it. A permanent failure (the user blocked the bot)
marks the identity unreachable: the message stays in the web inbox, which needs no delivery.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.dialect import insert_ignoring_conflicts
from core.errors import DomainError, NotFound
from core.schema import (
    DELIVERY_CHANNELS,
    DELIVERY_STATES,
    identities,
    members,
    notification_settings,
    outbox,
    outbox_deliveries,
)

MAX_ATTEMPTS = 8
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=6)
MAX_LEASE = 500
LEASE_SECONDS = 60
MAX_ERROR = 500
CHANNEL_DEFAULTS = {"telegram": True, "discord": True, "email": False, "reminders": True}


class InvalidChannel(DomainError):
    code = "invalid_channel"


class DeliveryState(DomainError):
    code = "invalid_state"


class Message(NamedTuple):  # a tuple: a month's summaries make 100,000 of them
    """A rendered message, ready to be queued."""

    member_id: int
    period: str
    kind: str
    subject: str
    data: dict[str, Any]
    text: str
    html: str


@dataclass(frozen=True)
class Leased:
    id: int
    message_id: int
    member_id: int
    channel: str
    address: str
    attempts: int
    lease_expires_at: datetime
    kind: str
    period: str
    subject: str
    text: str
    html: str


def backoff(attempts: int) -> timedelta:
    """How long a delivery waits after its `attempts`-th failed try: 30 s, 1 min, 2 min, …"""
    doublings = min(max(attempts - 1, 0), 20)  # 2**20 × 30 s is far past the cap already
    return min(FIRST_BACKOFF * 2**doublings, MAX_BACKOFF)


def check_channel(channel: str) -> str:
    if channel not in DELIVERY_CHANNELS:
        raise InvalidChannel(f"channel {channel!r} is not one of {', '.join(DELIVERY_CHANNELS)}")
    return channel


# --- writing --------------------------------------------------------------------------------


def message_rows(messages: list[Message], now: datetime) -> list[dict[str, Any]]:
    return [
        {"member_id": m.member_id, "period": m.period, "kind": m.kind, "subject": m.subject,
         "data": json.dumps(m.data, separators=(",", ":"), sort_keys=True), "text": m.text,
         "html": m.html, "created_at": now}
        for m in messages
    ]


async def queue_messages(conn: AsyncConnection, messages: list[Message],
                         now: datetime | None = None) -> int:
    """Write the messages (one per member, period and kind: a second is ignored) and their
    deliveries. Returns how many messages were new."""
    if not messages:
        return 0
    now = now or utc_now()
    insert = insert_ignoring_conflicts(conn, outbox, ["member_id", "period", "kind"])
    result = await conn.execute(insert.returning(outbox.c.id), message_rows(messages, now))
    added = len(result.all())
    kinds = {(m.period, m.kind) for m in messages}
    for period, kind in kinds:
        await add_deliveries(conn, period, kind, now)
    return added


def _chosen(channel: str):
    """Whether the member wants `channel` (no settings row: the defaults)."""
    return func.coalesce(notification_settings.c[channel], literal(CHANNEL_DEFAULTS[channel]))


async def add_deliveries(conn: AsyncConnection, period: str, kind: str,
                         now: datetime | None = None) -> None:
    """A delivery for each message of (period, kind) to each channel its member chose:
    every reachable chat identity, and e-mail when turned on. Set-based; runs again
    harmlessly (deliveries are unique per message, channel and address)."""
    now = now or utc_now()
    # Due at once. A worker run with --now in the future (a replay, a test) must not hide
    # them from senders that lease by the real clock.
    due = min(now, utc_now())
    network = case(*((identities.c.identity.startswith(f"{name}:"), name)
                     for name in ("telegram", "discord")))
    wanted = or_(and_(network == "telegram", _chosen("telegram")),
                 and_(network == "discord", _chosen("discord")))
    reminders_ok = literal(True) if kind != "reminder" else _chosen("reminders")
    base = (
        outbox.outerjoin(notification_settings,
                         notification_settings.c.member_id == outbox.c.member_id)
    )
    chats = (
        select(outbox.c.id, outbox.c.member_id, network, identities.c.identity,
               literal(due).label("available_at"), literal(now).label("created_at"))
        .select_from(base.join(identities, identities.c.member_id == outbox.c.member_id))
        .where(outbox.c.period == period, outbox.c.kind == kind,
               identities.c.unreachable_at.is_(None), wanted, reminders_ok)
    )
    mails = (
        select(outbox.c.id, outbox.c.member_id, literal("email"), members.c.email,
               literal(due).label("available_at"), literal(now).label("created_at"))
        .select_from(base.join(members, members.c.id == outbox.c.member_id))
        .where(outbox.c.period == period, outbox.c.kind == kind,
               members.c.email.is_not(None), _chosen("email"), reminders_ok)
    )
    columns = ["message_id", "member_id", "channel", "address", "available_at", "created_at"]
    insert = insert_ignoring_conflicts(conn, outbox_deliveries,
                                       ["message_id", "channel", "address"])
    for source in (chats, mails):
        await conn.execute(insert.from_select(columns, source))


# --- leasing --------------------------------------------------------------------------------


async def bury_exhausted(conn: AsyncConnection, now: datetime | None = None) -> int:
    """Deliveries whose last lease ran out after their last try are dead. On PostgreSQL one
    that another transaction holds (a late acknowledgement) is left to the next call: the
    rows are locked in id order, skipping those taken, so burying never waits on a sender
    nor deadlocks with one."""
    now = now or utc_now()
    exhausted = (outbox_deliveries.c.state == "leased", outbox_deliveries.c.available_at <= now,
                 outbox_deliveries.c.attempts >= MAX_ATTEMPTS)
    bury = update(outbox_deliveries).values(
        state="dead", last_error=f"no acknowledgement after {MAX_ATTEMPTS} tries")
    if conn.dialect.name == "postgresql":
        ids = list(await conn.scalars(
            select(outbox_deliveries.c.id).where(*exhausted)
            .order_by(outbox_deliveries.c.id).with_for_update(skip_locked=True)))
        if not ids:
            return 0
        bury = bury.where(outbox_deliveries.c.id.in_(ids))
    else:
        bury = bury.where(*exhausted)
    return (await conn.execute(bury)).rowcount


async def lease(conn: AsyncConnection, channel: str, limit: int, *,
                lease_seconds: int = LEASE_SECONDS, now: datetime | None = None
                ) -> list[Leased]:
    """Hand out up to `limit` deliveries of `channel` that are due, each for `lease_seconds`.
    Concurrent senders never get the same delivery (PostgreSQL: SKIP LOCKED; SQLite: one
    writer at a time)."""
    check_channel(channel)
    now = now or utc_now()
    until = now + timedelta(seconds=lease_seconds)
    await bury_exhausted(conn, now)
    due = (
        select(outbox_deliveries.c.id)
        .where(outbox_deliveries.c.channel == channel,
               outbox_deliveries.c.state.in_(("pending", "leased")),
               outbox_deliveries.c.available_at <= now)
        .order_by(outbox_deliveries.c.available_at, outbox_deliveries.c.id)
        .limit(max(1, min(limit, MAX_LEASE)))
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    taken = (await conn.execute(
        update(outbox_deliveries)
        .where(outbox_deliveries.c.id.in_(due.scalar_subquery()))
        .values(state="leased", available_at=until, attempts=outbox_deliveries.c.attempts + 1)
        .returning(outbox_deliveries.c.id, outbox_deliveries.c.message_id,
                   outbox_deliveries.c.member_id, outbox_deliveries.c.address,
                   outbox_deliveries.c.attempts)
    )).all()
    if not taken:
        return []
    bodies = {
        row.id: row for row in await conn.execute(
            select(outbox.c.id, outbox.c.kind, outbox.c.period, outbox.c.subject,
                   outbox.c.text, outbox.c.html)
            .where(outbox.c.id.in_({t.message_id for t in taken}))
        )
    }
    return sorted(
        (Leased(t.id, t.message_id, t.member_id, channel, t.address, t.attempts, until,
                bodies[t.message_id].kind, bodies[t.message_id].period,
                bodies[t.message_id].subject, bodies[t.message_id].text,
                bodies[t.message_id].html)
         for t in taken),
        key=lambda leased: leased.id,
    )


Channels = str | tuple[str, ...] | None  # one channel, any of several, or any


def _of_channel(channel: str | tuple[str, ...]):
    return outbox_deliveries.c.channel.in_((channel,) if isinstance(channel, str) else channel)


async def _delivery(conn: AsyncConnection, delivery_id: int, channel: Channels,
                    lock: bool = True):
    query = select(outbox_deliveries).where(outbox_deliveries.c.id == delivery_id)
    if channel is not None:
        query = query.where(_of_channel(channel))
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no outbox message with id {delivery_id}")
    return row


async def ack(conn: AsyncConnection, delivery_id: int, *, channel: Channels = None,
              now: datetime | None = None) -> str:
    """The sender delivered it. Acknowledging again changes nothing."""
    row = await _delivery(conn, delivery_id, channel)
    if row.state != "sent":
        await conn.execute(
            update(outbox_deliveries).where(outbox_deliveries.c.id == delivery_id)
            .values(state="sent", sent_at=now or utc_now(), last_error=None)
        )
    return "sent"


async def ack_many(conn: AsyncConnection, delivery_ids: list[int], *,
                   channel: Channels = None, now: datetime | None = None) -> int:
    """Acknowledge several in one statement; ids not found (or of another channel) are
    left out of the count."""
    if not delivery_ids:
        return 0
    query = (
        update(outbox_deliveries)
        .where(outbox_deliveries.c.id.in_(bindparam("ids", expanding=True)),
               outbox_deliveries.c.state != "sent")
        .values(state="sent", sent_at=now or utc_now(), last_error=None)
    )
    if channel is not None:
        query = query.where(_of_channel(channel))
    ids = sorted(set(delivery_ids))
    if conn.dialect.name == "postgresql":
        # Row locks in id order: two senders acknowledging overlapping sets in another
        # order would otherwise deadlock.
        await conn.execute(
            select(outbox_deliveries.c.id)
            .where(outbox_deliveries.c.id.in_(bindparam("ids", expanding=True)))
            .order_by(outbox_deliveries.c.id).with_for_update(), {"ids": ids})
    result = await conn.execute(query, {"ids": ids})
    return result.rowcount


async def ack_each(conn: AsyncConnection, delivery_ids: list[int], *,
                   channel: Channels = None, now: datetime | None = None) -> set[int]:
    """Acknowledge several, as `ack` would each: the ids that are there (acknowledged now or
    before); the others are unknown (or of another channel)."""
    ids = sorted(set(delivery_ids))
    await ack_many(conn, ids, channel=channel, now=now)
    query = select(outbox_deliveries.c.id).where(
        outbox_deliveries.c.id.in_(bindparam("ids", expanding=True)))
    if channel is not None:
        query = query.where(_of_channel(channel))
    return set(await conn.scalars(query, {"ids": ids}))


async def fail(conn: AsyncConnection, delivery_id: int, *, channel: Channels = None,
               retry_after: int | None = None, permanent: bool = False,
               reason: str | None = None, now: datetime | None = None) -> str:
    """The sender could not deliver it: try again later (back-off, at least `retry_after`
    seconds), or never (`permanent`: the address is unreachable). Returns the new state."""
    now = now or utc_now()
    # A permanent failure locks every unsent delivery to the address, in id order (see
    # mark_unreachable): taking its own row first could deadlock with another such failure.
    row = await _delivery(conn, delivery_id, channel, lock=not permanent)
    if row.state == "sent":
        return "sent"  # a late failure of a try that another one already delivered
    error = (reason or ("refused for good" if permanent else "failed"))[:MAX_ERROR]
    if permanent:
        await mark_unreachable(conn, row.channel, row.address, error, now)
        return "unreachable"
    if row.state in ("dead", "unreachable"):
        return row.state  # a late failure of a try: it does not bring the delivery back
    if row.attempts >= MAX_ATTEMPTS:
        state, available_at = "dead", row.available_at
    else:
        wait = max(backoff(row.attempts), timedelta(seconds=max(retry_after or 0, 0)))
        state, available_at = "pending", now + wait
    await conn.execute(
        update(outbox_deliveries).where(outbox_deliveries.c.id == delivery_id)
        .values(state=state, available_at=available_at, last_error=error)
    )
    return state


async def mark_unreachable(conn: AsyncConnection, channel: str, address: str, reason: str,
                           now: datetime | None = None) -> None:
    """Nothing more goes to `address`: its unsent deliveries stop, and a chat identity is
    marked, so that no new ones are made until the member turns the channel on again."""
    now = now or utc_now()
    to_address = (outbox_deliveries.c.channel == channel,
                  outbox_deliveries.c.address == address,
                  outbox_deliveries.c.state.in_(("pending", "leased")))
    if conn.dialect.name == "postgresql":  # in id order, as every writer of several rows
        await conn.execute(select(outbox_deliveries.c.id).where(*to_address)
                           .order_by(outbox_deliveries.c.id).with_for_update())
    await conn.execute(
        update(outbox_deliveries)
        .where(*to_address)
        .values(state="unreachable", last_error=reason[:MAX_ERROR])
    )
    if channel in ("telegram", "discord"):
        await conn.execute(
            update(identities).where(identities.c.identity == address)
            .values(unreachable_at=now, unreachable_reason=reason[:200])
        )


async def retry(conn: AsyncConnection, delivery_id: int, now: datetime | None = None) -> dict:
    """An admin sends a dead or unreachable delivery again, from a fresh count. One waiting
    or in a sender's hands is left alone: retrying it would hand it out twice."""
    row = await _delivery(conn, delivery_id, None)
    if row.state not in ("dead", "unreachable"):
        raise DeliveryState(f"outbox message {delivery_id} is {row.state}: only a dead or "
                            "unreachable one is retried")
    await conn.execute(
        update(outbox_deliveries).where(outbox_deliveries.c.id == delivery_id)
        .values(state="pending", attempts=0, available_at=now or utc_now())
    )
    return await delivery(conn, delivery_id)


# --- reading --------------------------------------------------------------------------------


def _listing():
    return (
        select(outbox_deliveries.c.id, outbox_deliveries.c.message_id,
               members.c.handle, outbox_deliveries.c.channel, outbox_deliveries.c.address,
               outbox_deliveries.c.state, outbox_deliveries.c.attempts,
               outbox_deliveries.c.available_at, outbox_deliveries.c.last_error,
               outbox_deliveries.c.created_at, outbox_deliveries.c.sent_at,
               outbox.c.kind, outbox.c.period)
        .select_from(outbox_deliveries
                     .join(outbox, outbox.c.id == outbox_deliveries.c.message_id)
                     .join(members, members.c.id == outbox_deliveries.c.member_id))
    )


async def delivery(conn: AsyncConnection, delivery_id: int) -> dict:
    row = (await conn.execute(_listing().where(outbox_deliveries.c.id == delivery_id))).first()
    if row is None:
        raise NotFound(f"no outbox message with id {delivery_id}")
    return dict(row._mapping)


async def deliveries(conn: AsyncConnection, *, state: str | None = None, limit: int = 100
                     ) -> list[dict]:
    """Deliveries for admins, newest first, of one state or all."""
    query = _listing().order_by(outbox_deliveries.c.id.desc()).limit(limit)
    if state is not None:
        if state not in DELIVERY_STATES:
            raise DeliveryState(f"state {state!r} is not one of {', '.join(DELIVERY_STATES)}")
        query = query.where(outbox_deliveries.c.state == state)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def depth(conn: AsyncConnection, now: datetime | None = None) -> dict[str, Any]:
    """Unsent deliveries by state, and the age in seconds of the oldest one due."""
    now = now or utc_now()
    counts = dict((await conn.execute(
        select(outbox_deliveries.c.state, func.count())
        .where(outbox_deliveries.c.state != "sent")
        .group_by(outbox_deliveries.c.state)
    )).all())
    oldest = await conn.scalar(
        select(func.min(outbox_deliveries.c.created_at))
        .where(outbox_deliveries.c.state.in_(("pending", "leased")))
    )
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return {
        "states": {state: counts.get(state, 0) for state in DELIVERY_STATES if state != "sent"},
        "oldest_pending_seconds": max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
    }


