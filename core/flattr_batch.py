"""Many flattrs of the current period in a few statements: the click path under load.

Concurrent requests are grouped by the gateway and written here together, in one
database transaction, so each costs a share of a statement rather than a round trip.
The rules are those of `core.flattrs.flattr`: one flattr per (member, thing, period),
none of the member's own things.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import DomainError, OwnThing
from core.flattrs import Flattr, Flattred, flattr
from core.periods import Period
from core.thing_keys import ThingKey
from core.things import Thing

UPSERT_THINGS = """
WITH new AS (
INSERT INTO things (key, kind, url, host, path, owner_id, created_at)
SELECT u.key, u.kind, u.url, u.host, u.path,
       (SELECT c.member_id FROM claims c
        WHERE c.verified_at IS NOT NULL AND u.kind = 'url' AND c.host = u.host
          AND substr(u.path, 1, length(c.path_prefix)) = c.path_prefix
        ORDER BY length(c.path_prefix) DESC LIMIT 1),
       $6
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
     AS u(key, kind, url, host, path)
ON CONFLICT (key) DO NOTHING
RETURNING id, key, kind, url, author_identity, owner_id
)
SELECT n.*, m.handle AS owner_handle FROM new n LEFT JOIN members m ON m.id = n.owner_id
UNION ALL
SELECT t.id, t.key, t.kind, t.url, t.author_identity, t.owner_id, m.handle
FROM things t LEFT JOIN members m ON m.id = t.owner_id
WHERE t.key = ANY($1::text[])
"""

FIND_THINGS = """
SELECT t.id, t.key, t.kind, t.url, t.author_identity, t.owner_id, m.handle AS owner_handle
FROM things t LEFT JOIN members m ON m.id = t.owner_id
WHERE t.key = ANY($1::text[])
"""

INSERT_FLATTRS = """
INSERT INTO flattrs (member_id, thing_id, period, created_at, source)
SELECT u.member_id, u.thing_id, $3, $4, u.source
FROM unnest($1::bigint[], $2::bigint[], $5::text[]) AS u(member_id, thing_id, source)
ON CONFLICT (member_id, thing_id, period) DO NOTHING
RETURNING id, member_id, thing_id, period, created_at, source
"""

FIND_FLATTRS = """
SELECT f.id, f.member_id, f.thing_id, f.period, f.created_at, f.source
FROM flattrs f
JOIN unnest($1::bigint[], $2::bigint[]) AS u(member_id, thing_id)
  ON f.member_id = u.member_id AND f.thing_id = u.thing_id
WHERE f.period = $3
"""


@dataclass(frozen=True)
class FlattrRequest:
    member_id: int
    key: ThingKey
    source: str


Outcome = Flattred | DomainError


async def flattr_many(
    conn: AsyncConnection, requests: list[FlattrRequest], now: datetime
) -> list[Outcome]:
    """Flattr each request in the current period; a refused one gets its error.

    The current period is open by definition: settlement refuses a period before its end.
    """
    period = Period.of(now)
    if conn.dialect.name == "postgresql":
        return await _flattr_many_postgres(conn, requests, period, now)
    return await _flattr_one_by_one(conn, requests, period, now)


async def _flattr_one_by_one(
    conn: AsyncConnection, requests: list[FlattrRequest], period: Period, now: datetime
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for request in requests:
        try:
            async with conn.begin_nested():
                outcomes.append(await flattr(conn, request.member_id, request.key,
                                             period=period, source=request.source, now=now))
        except DomainError as error:
            outcomes.append(error)
    return outcomes


async def _flattr_many_postgres(
    conn: AsyncConnection, requests: list[FlattrRequest], period: Period, now: datetime
) -> list[Outcome]:
    raw = (await conn.get_raw_connection()).driver_connection
    keys = {r.key.key: r.key for r in requests}
    columns = list(zip(*((k.key, k.kind, k.url, k.host, k.path) for k in keys.values()),
                       strict=True))
    # New things come back from the insert; known ones from the table (one snapshot).
    rows = await raw.fetch(UPSERT_THINGS, *(list(c) for c in columns), now)
    things = {row["key"]: Thing(**dict(row)) for row in rows}
    # A key another transaction inserted while ours waited is in neither part: read again.
    missing = [key for key in keys if key not in things]
    if missing:
        for row in await raw.fetch(FIND_THINGS, missing):
            things[row["key"]] = Thing(**dict(row))

    outcomes: list[Outcome | None] = [None] * len(requests)
    wanted: dict[tuple[int, int], str] = {}
    for i, request in enumerate(requests):
        thing = things[request.key.key]
        if thing.owner_id == request.member_id:
            outcomes[i] = OwnThing("you cannot flattr your own thing")
        else:
            wanted.setdefault((request.member_id, thing.id), request.source)
    created_pairs: set[tuple[int, int]] = set()
    found: dict[tuple[int, int], Flattr] = {}
    if wanted:
        members, thing_ids = (list(c) for c in zip(*wanted, strict=True))
        rows = await raw.fetch(INSERT_FLATTRS, members, thing_ids, str(period), now,
                               list(wanted.values()))
        for row in rows:
            pair = (row["member_id"], row["thing_id"])
            created_pairs.add(pair)
            found[pair] = Flattr(**dict(row))
        missing = [pair for pair in wanted if pair not in found]
        if missing:
            members, thing_ids = (list(c) for c in zip(*missing, strict=True))
            for row in await raw.fetch(FIND_FLATTRS, members, thing_ids, str(period)):
                found[(row["member_id"], row["thing_id"])] = Flattr(**dict(row))
    first_of_pair: set[tuple[int, int]] = set()
    for i, request in enumerate(requests):
        if outcomes[i] is not None:
            continue
        thing = things[request.key.key]
        pair = (request.member_id, thing.id)
        created = pair in created_pairs and pair not in first_of_pair
        first_of_pair.add(pair)
        outcomes[i] = Flattred(found[pair], thing, created=created)
    return outcomes  # type: ignore[return-value]
