"""The web inbox: every message a member was sent, newest first, read or not.

It reads the outbox itself, so a message is here whatever became of its deliveries.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.errors import NotFound
from core.schema import outbox

MAX_PAGE = 100


@dataclass(frozen=True)
class Page:
    messages: list[dict[str, Any]]
    unread: int
    next: int | None  # the `before` of the next page, None on the last one


def _shown(row: Any) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "period": row.period, "subject": row.subject,
            "text": row.text, "html": row.html, "data": json.loads(row.data),
            "created_at": row.created_at, "read": row.read_at is not None}


def _of(member_id: int):
    return select(outbox).where(outbox.c.member_id == member_id)


async def unread_count(conn: AsyncConnection, member_id: int) -> int:
    return await conn.scalar(
        select(func.count()).where(outbox.c.member_id == member_id, outbox.c.read_at.is_(None))
    )


async def page_of(conn: AsyncConnection, member_id: int, *, limit: int = 20,
                  before: int | None = None, unread_only: bool = False) -> Page:
    """Up to `limit` messages older than the message `before` (newest first)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = _of(member_id).order_by(outbox.c.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(outbox.c.id < before)
    if unread_only:
        query = query.where(outbox.c.read_at.is_(None))
    rows = (await conn.execute(query)).all()
    shown = rows[:limit]
    return Page([_shown(r) for r in shown], await unread_count(conn, member_id),
                shown[-1].id if len(rows) > limit else None)


async def mark_read(conn: AsyncConnection, member_id: int, message_id: int,
                    now: datetime | None = None) -> dict[str, Any]:
    """The member read one of their messages (again: it keeps the first time)."""
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id, outbox.c.member_id == member_id,
               outbox.c.read_at.is_(None))
        .values(read_at=now or utc_now())
    )
    row = (await conn.execute(_of(member_id).where(outbox.c.id == message_id))).first()
    if row is None:  # another member's message is as absent as one that never was
        raise NotFound(f"no message with id {message_id}")
    return _shown(row)


async def mark_all_read(conn: AsyncConnection, member_id: int,
                        now: datetime | None = None) -> int:
    """Every unread message of the member is read; how many were unread."""
    result = await conn.execute(
        update(outbox).where(outbox.c.member_id == member_id, outbox.c.read_at.is_(None))
        .values(read_at=now or utc_now())
    )
    return result.rowcount
