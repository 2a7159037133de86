"""Stored replies for idempotency keys: a retried request gets the first answer again."""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import utc_now
from core.dialect import insert_ignoring_conflicts
from core.errors import IdempotencyConflict
from core.schema import stored_replies


@dataclass(frozen=True)
class StoredReply:
    status: int
    body: str


def request_fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


async def claim_key(
    conn: AsyncConnection, scope: str, key: str, fingerprint: str, now: datetime | None = None
) -> StoredReply | None:
    """Reserve the key for this request, or return the reply stored for it.

    Raises IdempotencyConflict when the key was used for another request, or when the
    first request with this key is still being answered.
    """
    inserted = await conn.execute(
        insert_ignoring_conflicts(conn, stored_replies, ["scope", "key"]).values(
            scope=scope, key=key, request_hash=fingerprint, created_at=now or utc_now()
        )
    )
    if inserted.rowcount == 1:
        return None
    row = (
        await conn.execute(
            select(stored_replies).where(
                stored_replies.c.scope == scope, stored_replies.c.key == key
            )
        )
    ).first()
    if row.request_hash != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was used with another request")
    if row.status is None:
        raise IdempotencyConflict("the first request with this Idempotency-Key is in progress")
    return StoredReply(row.status, row.body)


async def store_reply(
    conn: AsyncConnection, scope: str, key: str, status: int, body: str
) -> None:
    await conn.execute(
        update(stored_replies)
        .where(stored_replies.c.scope == scope, stored_replies.c.key == key)
        .values(status=status, body=body)
    )
