"""Many flattrs of the current period at once: the click path under load.

Concurrent requests are grouped by the gateway and written here together. On PostgreSQL
that is one statement for the whole batch, so each click costs a share of one round trip;
SQLite, one writer at a time anyway, takes them one by one in one transaction.
The rules are those of `core.flattrs.flattr`: one flattr per (member, thing, period),
none of the member's own things.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import DomainError, InDebt, OwnThing, PeriodClosed, check
from core.flattrs import Flattr, Flattred, flattr
from core.periods import Period
from core.thing_keys import ThingKey
from core.things import Thing

# One statement, so one round trip and no explicit transaction. Rows are found by key probes
# (LATERAL … LIMIT 1), whatever the planner believes of a table's size: a join could read a
# whole month of flattrs for a batch of sixty. All things are inserted first, in key order,
# then the flattrs, in (thing, member) order (the sort waits for every thing), so concurrent
# batches take their locks in one order and cannot deadlock.
# Each thing of the batch comes back once with no flattr and once per flattr the batch made
# (created) or found (made before this statement's snapshot). A member who owes a debt
# (core/funding/debt.py) flattrs nothing and comes back once, as a row with only their id.
# The guard runs first (every row comes from `wanted`): `flattr_period_open` (migration
# 0005) takes the shared ownership lock, which settlement's split takes exclusively, and
# then reads `settlements` with a fresh snapshot. A period being settled or settled gives
# one row of NULLs and writes nothing; a click that got in first is counted by the split.
FLATTR_BATCH = """
WITH guard AS (SELECT flattr_period_open($9::text) AS open),
wanted AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[])
        AS w(member_id, key, kind, url, host, path, source)
    WHERE (SELECT open FROM guard)
),
new_things AS (
    INSERT INTO things (key, kind, url, host, path, owner_id, created_at)
    SELECT DISTINCT ON (w.key) w.key, w.kind, w.url, w.host, w.path,
           (SELECT c.member_id FROM claims c
            WHERE c.verified_at IS NOT NULL AND w.kind = 'url' AND c.host = w.host
              AND (w.path = rtrim(c.path_prefix, '/')
                   OR substr(w.path, 1, length(rtrim(c.path_prefix, '/')) + 1)
                      = rtrim(c.path_prefix, '/') || '/')
            ORDER BY length(c.path_prefix) DESC LIMIT 1),
           $8::timestamptz
    FROM wanted w
    ORDER BY w.key
    ON CONFLICT (key) DO NOTHING
    RETURNING id, key, kind, url, author_identity, owner_id
),
indebted AS (
    SELECT DISTINCT w.member_id FROM wanted w
    WHERE EXISTS (SELECT 1 FROM accounts d WHERE d.member_id = w.member_id
                  AND d.kind = 'debt' AND d.balance_micros < 0)
),
batch_things AS (
    SELECT * FROM new_things
    UNION ALL
    SELECT t.id, t.key, t.kind, t.url, t.author_identity, t.owner_id
    FROM (SELECT DISTINCT key FROM wanted) w
    CROSS JOIN LATERAL (SELECT * FROM things t WHERE t.key = w.key LIMIT 1) t
),
accepted AS (
    SELECT DISTINCT ON (t.id, w.member_id) w.member_id, t.id AS thing_id, w.source
    FROM wanted w JOIN batch_things t ON t.key = w.key
    WHERE t.owner_id IS DISTINCT FROM w.member_id
      AND w.member_id NOT IN (SELECT member_id FROM indebted)
    ORDER BY t.id, w.member_id
),
new_flattrs AS (
    INSERT INTO flattrs (member_id, thing_id, period, created_at, source)
    SELECT a.member_id, a.thing_id, $9::text, $8::timestamptz, a.source
    FROM accepted a
    ORDER BY a.thing_id, a.member_id
    ON CONFLICT (member_id, thing_id, period) DO NOTHING
    RETURNING id, member_id, thing_id, period, created_at, source
),
batch_flattrs AS (
    SELECT n.*, true AS created FROM new_flattrs n
    UNION ALL
    SELECT f.id, f.member_id, f.thing_id, f.period, f.created_at, f.source, false
    FROM accepted a
    CROSS JOIN LATERAL (
        SELECT * FROM flattrs f
        WHERE f.member_id = a.member_id AND f.thing_id = a.thing_id AND f.period = $9::text
        LIMIT 1
    ) f
)
SELECT t.id AS thing_id, t.key, t.kind, t.url, t.author_identity, t.owner_id,
       CASE WHEN t.owner_id IS NOT NULL
            THEN (SELECT m.handle FROM members m WHERE m.id = t.owner_id) END AS owner_handle,
       NULL::bigint AS flattr_id, NULL::bigint AS member_id, NULL::text AS period,
       NULL::timestamptz AS created_at, NULL::text AS source, NULL::boolean AS created
FROM batch_things t
UNION ALL
SELECT f.thing_id, NULL, NULL, NULL, NULL, NULL, NULL, f.id, f.member_id, f.period,
       f.created_at, f.source, f.created
FROM batch_flattrs f
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, i.member_id, NULL, NULL, 'debt', NULL
FROM indebted i
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE NOT (SELECT open FROM guard)
"""

# A statement that met a thing or flattr another transaction committed after its snapshot
# cannot see it; those requests go again in a new statement, which can. Each pass settles
# at least every request the previous one was blocked on, so a few always suffice.
MAX_PASSES = 5


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

    `conn` must be outside any transaction: every outcome returned is committed, and the
    connection is left outside one again. A period that settlement has begun refuses
    every click of the batch with PeriodClosed.
    """
    check(not conn.in_transaction(), "flattr_many commits on its own: no transaction")
    if not requests:
        return []
    period = Period.of(now)
    if conn.dialect.name == "postgresql":
        return await _flattr_many_postgres(conn, requests, period, now)
    async with conn.begin():
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
    """Flattr the batch in one statement that commits on its own (no transaction is open).

    A pass that is done stays done when a later pass runs.
    """
    raw = (await conn.get_raw_connection()).driver_connection
    outcomes: list[Outcome | None] = [None] * len(requests)
    todo = list(range(len(requests)))
    for _ in range(MAX_PASSES):
        todo = await _one_pass(raw, requests, todo, outcomes, period, now)
        if not todo:
            return outcomes  # type: ignore[return-value]
    raise RuntimeError(f"{len(todo)} flattrs were still blocked after {MAX_PASSES} passes")


async def _one_pass(
    raw, requests: list[FlattrRequest], todo: list[int], outcomes: list[Outcome | None],
    period: Period, now: datetime,
) -> list[int]:
    """Settle what this statement can see; return the requests to try again."""
    columns = zip(*((r.member_id, r.key.key, r.key.kind, r.key.url, r.key.host, r.key.path,
                     r.source) for r in (requests[i] for i in todo)), strict=True)
    rows = await raw.fetch(FLATTR_BATCH, *map(list, columns), now, str(period))
    if rows and rows[-1][0] is None and rows[-1][8] is None:
        for i in todo:
            outcomes[i] = PeriodClosed(f"{period} is being settled or has been settled")
        return []
    things: dict[str, Thing] = {}
    flattred: dict[tuple[int, int], tuple[Flattr, bool]] = {}
    indebted: set[int] = set()
    for (thing_id, key, kind, url, author_identity, owner_id, owner_handle, flattr_id,
         member_id, flattr_period, created_at, source, created) in rows:
        if thing_id is None and member_id is not None:
            indebted.add(member_id)
        elif flattr_id is None:
            things[key] = Thing(thing_id, key, kind, url, author_identity, owner_id,
                                owner_handle)
        else:
            flattred[(member_id, thing_id)] = (
                Flattr(flattr_id, member_id, thing_id, flattr_period, created_at, source),
                created,
            )
    again: list[int] = []
    answered: set[tuple[int, int]] = set()
    for i in todo:
        request = requests[i]
        if request.member_id in indebted:
            outcomes[i] = InDebt("a refund or dispute left you owing money: add funds to "
                                 "repay it before flattring again")
            continue
        thing = things.get(request.key.key)
        if thing is None:
            again.append(i)
            continue
        if thing.owner_id == request.member_id:
            outcomes[i] = OwnThing("you cannot flattr your own thing")
            continue
        pair = (request.member_id, thing.id)
        found = flattred.get(pair)
        if found is None:
            again.append(i)
            continue
        flattr_, created = found
        # The same click twice in one batch: the first made it, the second found it.
        outcomes[i] = Flattred(flattr_, thing, created=created and pair not in answered)
        answered.add(pair)
    return again
