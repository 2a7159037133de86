"""PostgreSQL: a settled month's shares are a partition of `shares`, made by CREATE TABLE …
AS and attached with the keys, indexes and checks of `shares`."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core.money import parse_amount as eur
from world import World

pytestmark = pytest.mark.postgres_only


async def _settled_month(world: World) -> None:
    await world.member("alice", credit="10", budget="5")
    await world.member("bob", credit="10", budget="2")
    await world.claim("bob", "bob.example")
    await world.flattr("alice", "https://bob.example/post", "2026-01")
    await world.flattr("alice", "https://nobody.example/post", "2026-01")
    await world.flattr("bob", "https://nobody.example/other", "2026-01")
    await world.settle("2026-01")


async def test_the_month_is_an_attached_partition_with_the_indexes_of_shares(world: World):
    await _settled_month(world)
    async with world.engine.connect() as conn:
        parent = await conn.scalar(text(
            "SELECT inhparent::regclass::text FROM pg_inherits "
            "WHERE inhrelid = 'shares_2026_01'::regclass"
        ))
        indexes = set((await conn.execute(text(
            "SELECT i.indexrelid::regclass::text FROM pg_index i "
            "WHERE i.indrelid = 'shares_2026_01'::regclass"
        ))).scalars())
        checks = set((await conn.execute(text(
            "SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'shares_2026_01'::regclass AND contype = 'c'"
        ))).scalars())
        not_null = set((await conn.execute(text(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'shares_2026_01'::regclass "
            "AND attnum > 0 AND attnotnull"
        ))).scalars())
        rows = await conn.scalar(text("SELECT COUNT(*) FROM shares WHERE period = '2026-01'"))
    assert parent == "shares"
    assert len(indexes) == 3  # the key, the held shares by thing, the resolved shares
    assert {"ck_shares_amount_nonneg", "ck_shares_state_known"} <= checks
    assert not_null == {"giver_id", "flattr_id", "period", "thing_id", "amount_micros", "state"}
    assert rows == 3
    assert await world.violations() == {}


@pytest.mark.parametrize(("column", "value"), [("amount_micros", "-1"), ("state", "'lost'")])
async def test_the_partition_refuses_what_shares_refuses(world: World, column, value):
    await _settled_month(world)
    values = {"giver_id": "1", "flattr_id": "999999", "period": "'2026-01'", "thing_id": "1",
              "amount_micros": "1", "state": "'held'", column: value}
    with pytest.raises(IntegrityError):
        async with world.engine.begin() as conn:
            await conn.execute(text(
                f"INSERT INTO shares ({', '.join(values)}) VALUES ({', '.join(values.values())})"
            ))
    assert await world.balances("bob") == {"giving": eur("8"), "revenue": eur("2.25"),
                                           "held_for_you": 0}
