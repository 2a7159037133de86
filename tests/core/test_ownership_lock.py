"""On PostgreSQL, who owns what cannot change while settlement splits a month.

Charges count a giver's flattrs and the shares split over the same flattrs: a claim or a
chat link committed between the two statements would leave money without a share.
"""

import asyncio

import pytest
from sqlalchemy import text

from core import claims, members, things
from core.locks import lock_ownership

pytestmark = pytest.mark.postgres_only


async def ownership_change_waits_for_the_split(engine, change) -> bool:
    """True when `change` cannot commit while a split holds the ownership lock."""
    async with engine.connect() as split:
        await split.begin()
        await lock_ownership(split, exclusive=True)
        async with engine.connect() as other:
            await other.begin()
            await other.execute(text("SET LOCAL lock_timeout = '300ms'"))
            try:
                await change(other)
            except Exception as error:  # the lock timeout is the expected outcome
                return "lock timeout" in str(error)
            finally:
                await other.rollback()
            return False


async def test_claims_links_and_authors_take_the_ownership_lock(engine, backend):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        claim = await claims.create_claim(conn, alice.id, "alice.example")
        await things.get_or_create_thing(conn, "telegram:-1/2")

    async def verify(conn):
        await claims.mark_verified(conn, claim.id)

    async def link(conn):
        await members.link_identity(conn, alice.id, "telegram:9")

    async def author(conn):
        await things.get_or_create_thing(conn, "telegram:-1/2", author_identity="telegram:9")

    results = await asyncio.gather(*(ownership_change_waits_for_the_split(engine, change)
                                     for change in (verify, link, author)))
    assert results == [True, True, True]
