"""Members, identities, things and flattrs through the core services, on both backends."""

from datetime import UTC, datetime

import pytest

from core import claims, flattrs, members, things
from core.errors import (
    BudgetBelowMinimum,
    ClaimTaken,
    HandleTaken,
    IdentityTaken,
    InvalidHandle,
    NotFound,
    OwnThing,
    PeriodClosed,
)
from core.periods import Period
from world import World

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


async def test_handles_are_unique_whatever_their_case(engine):
    async with engine.begin() as conn:
        made = await members.create_member(conn, "Alice", password="correct horse")
        assert made.handle == "Alice"
        with pytest.raises(HandleTaken):
            await members.create_member(conn, "aLiCe")
        with pytest.raises(InvalidHandle):
            await members.create_member(conn, "admin")
        found = await members.member_by_handle(conn, "ALICE")
        assert found.id == made.id
        stored = await members.password_hash_of(conn, made.id)
        assert stored.startswith("$argon2")
        assert members.password_matches(stored, "correct horse")
        assert not members.password_matches(stored, "wrong horse")


async def test_budget_is_at_least_the_minimum(engine, settings):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        with pytest.raises(BudgetBelowMinimum):
            await members.set_budget(conn, alice.id, 1_999_999, settings)
        updated = await members.set_budget(conn, alice.id, 2_000_000, settings)
        assert updated.budget_micros == 2_000_000


async def test_one_flattr_per_member_thing_and_period(engine):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        first = await flattrs.flattr(conn, alice.id, "https://x.example/a?utm_source=z", now=NOW)
        again = await flattrs.flattr(conn, alice.id, "HTTPS://X.example:443/a", now=NOW)
        assert first.created and not again.created
        assert again.flattr.id == first.flattr.id
        assert first.flattr.period == "2026-11"
        next_month = await flattrs.flattr(
            conn, alice.id, "https://x.example/a", now=datetime(2026, 12, 1, tzinfo=UTC)
        )
        assert next_month.created and next_month.flattr.period == "2026-12"


async def test_take_back_while_open_only(engine):
    async with engine.begin() as conn:
        alice = await members.create_member(conn, "alice")
        bob = await members.create_member(conn, "bob")
        made = await flattrs.flattr(conn, alice.id, "https://x.example/", now=NOW)
        with pytest.raises(NotFound):
            await flattrs.take_back(conn, bob.id, made.flattr.id, now=NOW)
        with pytest.raises(PeriodClosed):
            await flattrs.take_back(
                conn, alice.id, made.flattr.id, now=datetime(2026, 12, 1, tzinfo=UTC)
            )
        await flattrs.take_back(conn, alice.id, made.flattr.id, now=NOW)
        assert await flattrs.flattrs_of(conn, alice.id, Period(2026, 11)) == []


async def test_no_flattr_into_a_future_or_settled_period(engine, settings):
    world = World(engine, settings)
    await world.member("alice", credit="5", budget="2")
    await world.flattr("alice", "https://x.example/", "2026-01")
    await world.settle("2026-01")
    with pytest.raises(PeriodClosed):
        await world.flattr("alice", "https://y.example/", "2026-01")
    with pytest.raises(PeriodClosed):
        await world.flattr("alice", "https://y.example/", "2099-01")


async def test_claims_decide_page_owners_by_longest_prefix(engine):
    async with engine.begin() as conn:
        host_owner = await members.create_member(conn, "hosty")
        blogger = await members.create_member(conn, "blogger")
        page = await things.get_or_create_thing(conn, "https://blogs.example/alice/post")
        other = await things.get_or_create_thing(conn, "https://blogs.example/bob/post")
        assert page.owner_id is None

        whole = await claims.create_claim(conn, host_owner.id, "Blogs.Example")
        await claims.mark_verified(conn, whole.id)
        mine = await claims.create_claim(conn, blogger.id, "blogs.example", "/alice/")
        await claims.mark_verified(conn, mine.id)

        assert (await things.thing_by_id(conn, page.id)).owner_handle == "blogger"
        assert (await things.thing_by_id(conn, other.id)).owner_handle == "hosty"
        with pytest.raises(OwnThing):
            await flattrs.flattr(conn, blogger.id, "https://blogs.example/alice/post", now=NOW)

        rival = await claims.create_claim(conn, (await members.create_member(conn, "r1")).id,
                                          "blogs.example")
        with pytest.raises(ClaimTaken):
            await claims.mark_verified(conn, rival.id)


async def test_linked_identity_owns_its_chat_posts_until_unlinked(engine):
    async with engine.begin() as conn:
        author = await members.create_member(conn, "author")
        reader = await members.create_member(conn, "reader")
        post = await things.get_or_create_thing(
            conn, "discord:1/2/3", author_identity="discord:77"
        )
        assert post.owner_id is None
        identity_id = await members.link_identity(conn, author.id, "discord:77")
        assert (await things.thing_by_id(conn, post.id)).owner_id == author.id
        with pytest.raises(IdentityTaken):
            await members.link_identity(conn, reader.id, "discord:77")
        await members.unlink_identity(conn, author.id, identity_id)
        assert (await things.thing_by_id(conn, post.id)).owner_id is None
