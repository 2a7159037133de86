"""What the chat bots need of the core, on both backends: chat settings, a flattr taken back
by its thing, what a member received this month, what waits for an unlinked author."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from core import chats, flattrs, members
from core.errors import InvalidChat, InvalidIdentity, InvalidThing, NotFound, PeriodClosed
from core.periods import Period
from core.schema import chat_settings
from core.schema import flattrs as flattrs_table
from core.things import waiting_for_author

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
LATER = datetime(2026, 11, 27, 8, tzinfo=UTC)
NOVEMBER = Period(2026, 11)


async def test_a_chat_never_set_has_the_defaults_and_writes_nothing(engine):
    async with engine.begin() as conn:
        found = await chats.settings_of(conn, "telegram:-1001234")
        unchanged = await chats.change_settings(conn, "discord:42", {})
        rows = await conn.scalar(select(func.count()).select_from(chat_settings))
    assert found == chats.ChatSettings("telegram:-1001234", None, None, (), None)
    assert unchanged == chats.ChatSettings("discord:42", None, None, (), None)
    assert rows == 0


async def test_settings_change_only_what_is_named(engine):
    async with engine.begin() as conn:
        first = await chats.change_settings(
            conn, "discord:42", {"emoji": "flattr_coin:123456789012345678",
                                 "channels": ["7", "8", "7"]}, now=NOW)
        assert first == chats.ChatSettings("discord:42", "flattr_coin:123456789012345678",
                                           None, ("7", "8"), first.updated_at)
        second = await chats.change_settings(conn, "discord:42", {"owner": "discord:99"},
                                             now=LATER)
        assert (second.emoji, second.owner, second.channels) == (
            "flattr_coin:123456789012345678", "discord:99", ("7", "8"))
        assert second.updated_at.replace(tzinfo=UTC) == LATER
        reset = await chats.change_settings(conn, "discord:42",
                                            {"emoji": None, "channels": []})
        assert (reset.emoji, reset.owner, reset.channels) == (None, "discord:99", ())
        other = await chats.settings_of(conn, "telegram:-42")
        assert other.updated_at is None  # chats are apart: discord:42 is not telegram:-42


@pytest.mark.parametrize(("chat", "changes", "error"), [
    ("telegram:0", {"emoji": "👍"}, InvalidChat),
    ("discord:-5", {"emoji": "👍"}, InvalidChat),  # a Discord server's id is positive
    ("slack:5", {}, InvalidChat),
    ("telegram:-5", {"emoji": ""}, InvalidChat),
    ("telegram:-5", {"emoji": "a b"}, InvalidChat),
    ("telegram:-5", {"emoji": "\x07"}, InvalidChat),
    ("telegram:-5", {"emoji": "x" * 65}, InvalidChat),
    ("telegram:-5", {"channels": ["01"]}, InvalidChat),
    ("telegram:-5", {"channels": [str(n) for n in range(1, 102)]}, InvalidChat),
    ("telegram:-5", {"owner": "discord:5"}, InvalidIdentity),  # another network
    ("telegram:-5", {"owner": "telegram:-5"}, InvalidIdentity),  # a chat, not a user
    ("telegram:-5", {"colour": "red"}, InvalidChat),
])
async def test_bad_settings_are_refused_and_change_nothing(engine, chat, changes, error):
    async with engine.begin() as conn:
        await chats.change_settings(conn, "telegram:-5", {"emoji": "🔥"}, now=NOW)
        with pytest.raises(error):
            await chats.change_settings(conn, chat, {"channels": ["1"], **changes})
        kept = await chats.settings_of(conn, "telegram:-5")
    assert (kept.emoji, kept.channels) == ("🔥", ())


async def test_an_emoji_of_several_code_points_is_kept_whole(engine):
    family = "👨\u200d👩\u200d👧"  # joined by zero-width joiners
    async with engine.begin() as conn:
        await chats.change_settings(conn, "telegram:-5", {"emoji": family})
    async with engine.connect() as conn:
        assert (await chats.settings_of(conn, "telegram:-5")).emoji == family


async def test_a_flattr_is_taken_back_by_its_thing_in_the_open_month_only(engine):
    async with engine.begin() as conn:
        ann = await members.create_member(conn, "ann")
        bob = await members.create_member(conn, "bob")
        made = await flattrs.flattr(conn, ann.id, "telegram:-100/5", now=NOW)
        await flattrs.flattr(conn, bob.id, "telegram:-100/5", now=NOW)
        with pytest.raises(NotFound):
            await flattrs.take_back_thing(conn, ann.id, "telegram:-100/6", now=NOW)
        with pytest.raises(InvalidThing):
            await flattrs.take_back_thing(conn, ann.id, "telegram:x/6", now=NOW)
        # December: November's flattr is no longer the member's to take back.
        with pytest.raises(PeriodClosed):
            await flattrs.take_back_thing(conn, ann.id, "telegram:-100/5",
                                          now=datetime(2026, 12, 1, tzinfo=UTC))
        with pytest.raises(NotFound):  # nor is one older still
            await flattrs.take_back_thing(conn, ann.id, "telegram:-100/5",
                                          now=datetime(2027, 1, 1, tzinfo=UTC))
        taken = await flattrs.take_back_thing(conn, ann.id, "TELEGRAM:-100/5", now=NOW)
        assert (taken["id"], taken["thing"], taken["source"]) == (
            made.flattr.id, "telegram:-100/5", "web")
        with pytest.raises(NotFound):
            await flattrs.take_back_thing(conn, ann.id, "telegram:-100/5", now=NOW)
        left = await conn.scalars(select(flattrs_table.c.member_id))
        assert list(left) == [bob.id]  # bob's flattr of the same post stays


async def test_a_month_being_settled_keeps_its_flattrs(engine):
    async with engine.begin() as conn:
        ann = await members.create_member(conn, "ann")
        await flattrs.flattr(conn, ann.id, "https://a.example/", now=NOW)
        await conn.execute(text(
            "INSERT INTO settlements (period, stage, status, fee_bps, minimum_budget_micros, "
            "hold_months, idle_budget, started_at) VALUES "
            "('2026-11', 0, 'settling', 1000, 2000000, 6, 'keep', CURRENT_TIMESTAMP)"))
        with pytest.raises(PeriodClosed):
            await flattrs.take_back_thing(conn, ann.id, "https://a.example/", now=NOW)
        assert await conn.scalar(select(func.count()).select_from(flattrs_table)) == 1


async def test_received_counts_others_flattrs_of_the_member_s_things_this_month(engine):
    async with engine.begin() as conn:
        ann, bob, cid = [await members.create_member(conn, h) for h in ("ann", "bob", "cid")]
        await members.link_identity(conn, ann.id, "telegram:1")
        for giver in (bob, cid):
            for post in (1, 2):
                await flattrs.flattr(conn, giver.id, f"telegram:-9/{post}",
                                     author_identity="telegram:1", now=NOW)
        await flattrs.flattr(conn, bob.id, "telegram:-9/3", author_identity="telegram:1",
                             now=datetime(2026, 10, 3, tzinfo=UTC))  # another month
        await flattrs.flattr(conn, bob.id, "telegram:-9/4", author_identity="telegram:2",
                             now=NOW)  # someone else's post
        # Ann flattred a post before she linked the identity that makes it hers.
        await flattrs.flattr(conn, ann.id, "telegram:-9/5", author_identity="telegram:3",
                             now=NOW)
        await members.link_identity(conn, ann.id, "telegram:3")
        assert await flattrs.received_in(conn, ann.id, NOVEMBER) == (4, 2)
        assert await flattrs.received_in(conn, bob.id, NOVEMBER) == (0, 0)


async def test_what_waits_for_an_author_until_they_link(engine):
    async with engine.begin() as conn:
        ann, bob = [await members.create_member(conn, h) for h in ("ann", "bob")]
        for giver, post in ((ann, 1), (bob, 1), (ann, 2)):
            await flattrs.flattr(conn, giver.id, f"telegram:-9/{post}",
                                 author_identity="telegram:7", now=NOW)
        await flattrs.flattr(conn, ann.id, "telegram:-9/3", author_identity="telegram:7",
                             now=datetime(2026, 10, 3, tzinfo=UTC))
        await flattrs.flattr(conn, ann.id, "telegram:-9/4", author_identity="telegram:8",
                             now=NOW)
        waiting = await waiting_for_author(conn, "telegram:7", NOVEMBER)
        assert (waiting.linked, waiting.things, waiting.flattrs) == (False, 2, 3)
        october = await waiting_for_author(conn, "telegram:7", Period(2026, 10))
        assert (october.things, october.flattrs) == (1, 1)
        nobody = await waiting_for_author(conn, "discord:7", NOVEMBER)
        assert (nobody.linked, nobody.things, nobody.flattrs) == (False, 0, 0)
        await members.link_identity(conn, bob.id, "telegram:7")
        linked = await waiting_for_author(conn, "telegram:7", NOVEMBER)
        assert (linked.linked, linked.things, linked.flattrs) == (True, 0, 0)
        with pytest.raises(InvalidIdentity):
            await waiting_for_author(conn, "telegram:-7", NOVEMBER)
