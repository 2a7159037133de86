"""The click path's batched flattrs: the same rules as one flattr at a time, on both backends.

The property test plays a random batch (repeats, own things, pages flattred before) against
a model of the rules. The PostgreSQL tests make a batch's statement meet rows that another
transaction committed after its snapshot, which only a second pass can see.
"""

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from core import claims, flattrs, members
from core.db import create_engine
from core.errors import OwnThing
from core.flattr_batch import FlattrRequest, flattr_many
from core.flattrs import Flattred
from core.schema import flattrs as flattrs_table
from core.schema import things as things_table
from core.thing_keys import parse_thing_key

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
HOSTS = ("a.example", "b.example")
PAGES = ("/", "/x", "/y")

EXAMPLES = hypothesis_settings(
    max_examples=25, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

page = st.tuples(st.sampled_from(HOSTS), st.sampled_from(PAGES))


@given(
    owners=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(HOSTS)), max_size=2),
    before=st.lists(st.tuples(st.integers(0, 2), page), max_size=4),
    batch=st.lists(st.tuples(st.integers(0, 2), page), min_size=1, max_size=12),
)
@EXAMPLES
def test_a_batch_follows_the_rules_of_single_flattrs(databases, owners, before, batch):
    asyncio.run(play(databases.new_url(), owners, before, batch))


async def play(url: str, owners, before, batch) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            ids = [(await members.create_member(conn, f"m{n}")).id for n in range(3)]
            owner_of: dict[str, int] = {}
            for who, host in owners:
                if host not in owner_of:
                    claim = await claims.create_claim(conn, ids[who], host, None)
                    await claims.mark_verified(conn, claim.id)
                    owner_of[host] = who
        made: dict[tuple[int, str], int] = {}  # (member, url) -> flattr id
        async with engine.begin() as conn:
            for who, (host, path) in before:
                if owner_of.get(host) != who:
                    done = await flattrs.flattr(conn, ids[who], f"https://{host}{path}", now=NOW)
                    made[(who, done.thing.key)] = done.flattr.id

        requests = [FlattrRequest(ids[who], parse_thing_key(f"https://{host}{path}"), "web")
                    for who, (host, path) in batch]
        async with engine.connect() as conn:
            outcomes = await flattr_many(conn, requests, NOW)

        created_here: dict[tuple[int, str], int] = {}
        for (who, (host, _)), request, outcome in zip(batch, requests, outcomes, strict=True):
            pair = (who, request.key.key)
            if owner_of.get(host) == who:
                assert isinstance(outcome, OwnThing)
                continue
            assert isinstance(outcome, Flattred)
            assert outcome.thing.key == request.key.key
            assert outcome.thing.owner_handle == (
                f"m{owner_of[host]}" if host in owner_of else None)
            assert outcome.flattr.member_id == ids[who]
            assert outcome.flattr.period == "2026-11"
            first = pair not in made and pair not in created_here
            assert outcome.created == first
            if first:
                created_here[pair] = outcome.flattr.id
            assert outcome.flattr.id == {**made, **created_here}[pair]

        async with engine.connect() as conn:
            stored = (await conn.execute(
                select(flattrs_table.c.member_id, things_table.c.key)
                .join(things_table, things_table.c.id == flattrs_table.c.thing_id)
            )).all()
        by_member = {member_id: n for n, member_id in enumerate(ids)}
        assert sorted((by_member[m], key) for m, key in stored) == sorted({**made,
                                                                            **created_here})
    finally:
        await engine.dispose()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _flattr_many(engine, requests):
    async with engine.connect() as conn:
        return await flattr_many(conn, requests, NOW)


async def _blocked_flattr(engine, database_url: str, hold_sql: str, member_id: int, url: str):
    """Flattr in a batch while another transaction holds `hold_sql`'s rows; commit it midway."""
    request = FlattrRequest(member_id, parse_thing_key(url), "web")
    with psycopg.connect(_libpq(database_url)) as other:
        other.execute(hold_sql)
        batch = asyncio.create_task(_flattr_many(engine, [request]))
        await asyncio.sleep(0.5)  # the batch now waits on the other transaction's rows
        assert not batch.done()
        other.commit()
        [outcome] = await asyncio.wait_for(batch, 10)
        return outcome


@pytest.mark.postgres_only
async def test_a_thing_committed_after_the_snapshot_is_found_in_a_second_pass(
    engine, database_url
):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
    url = "https://late.example/post"
    outcome = await _blocked_flattr(engine, database_url, (
        "INSERT INTO things (key, kind, url, host, path, created_at) VALUES "
        f"('{url}', 'url', '{url}', 'late.example', '/post', now())"), alice.id, url)
    async with engine.connect() as conn:
        thing_ids = (await conn.execute(select(things_table.c.id))).scalars().all()
    assert isinstance(outcome, Flattred) and outcome.created
    assert [outcome.thing.id] == thing_ids


@pytest.mark.postgres_only
async def test_a_flattr_committed_after_the_snapshot_is_answered_as_made_before(
    engine, database_url
):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        known = await flattrs.flattr(conn, (await members.create_member(conn, "bob")).id,
                                     "https://known.example/", now=NOW)
    outcome = await _blocked_flattr(engine, database_url, (
        "INSERT INTO flattrs (member_id, thing_id, period, created_at, source) VALUES "
        f"({alice.id}, {known.thing.id}, '2026-11', now(), 'extension')"), alice.id,
        "https://known.example/")
    assert isinstance(outcome, Flattred) and not outcome.created
    assert outcome.flattr.source == "extension"  # the other transaction's flattr
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(flattrs_table))
    assert count == 2


async def test_an_empty_batch_writes_nothing(engine):
    async with engine.connect() as conn:
        assert await flattr_many(conn, [], NOW) == []
        assert not conn.in_transaction()


@pytest.mark.postgres_only
async def test_concurrent_batches_of_the_same_pages_make_each_flattr_once(engine):
    async with engine.begin() as conn:
        ids = [(await members.create_member(conn, f"m{n}")).id for n in range(4)]
    pages = [parse_thing_key(f"https://race.example/{n}") for n in range(30)]
    batches = [
        [FlattrRequest(member, page, "web") for page in pages[i::2] + pages[::3]
         for member in ids]
        for i in range(6)
    ]
    results = await asyncio.gather(*(_flattr_many(engine, b) for b in batches))
    made: dict[tuple[int, str], set[int]] = {}
    created = 0
    for outcomes in results:
        for outcome in outcomes:
            assert isinstance(outcome, Flattred)
            made.setdefault((outcome.flattr.member_id, outcome.thing.key), set()).add(
                outcome.flattr.id)
            created += outcome.created
    assert all(len(found) == 1 for found in made.values())
    assert created == len(made) == 4 * 30
