"""The delivery loop: summaries leased from the gateway's outbox and sent as DMs with a
statement button, paced, through discord.py's own rate limiter; DMs closed (403, 50007) are
a permanent failure, never tried again."""

import itertools
from datetime import UTC, datetime, timedelta

from outbox_messages import chat_members, delivery_states, lease_ends, message, queue
from sqlalchemy import select

from core.schema import identities, outbox_deliveries

FIRST = 1000  # chat_members' users are discord:1000, discord:1001, …


async def test_a_summary_is_sent_as_a_dm_with_its_statement_and_acknowledged(discord_bot,
                                                                              engine):
    (member_id,) = await chat_members(engine, 1, network="discord")
    await queue(engine, [message(member_id)])
    done = await discord_bot.bot.deliverer.round(wait_seconds=0)
    assert (done.sent, done.retried, done.unreachable) == (1, 0, 0)
    (dm,) = discord_bot.api.dms(FIRST)
    assert dm["content"] == "2026-10: 5.00 EUR shared among 3 things"
    (button,) = dm["components"][0]["components"]
    assert (button["label"], button["url"]) == (
        "Your statement", "https://flattr.example/statements/2026-10")
    (opened,) = discord_bot.api.called("POST", "/users/@me/channels")
    assert opened.body == {"recipient_id": FIRST}
    assert set((await delivery_states(engine)).values()) == {"sent"}
    assert (await discord_bot.bot.deliverer.round(wait_seconds=0)).sent == 0  # not twice


async def test_dms_are_paced_one_at_a_time(discord_api, discord_settings, gateway, memory,
                                           engine):
    from discord_harness import running_bot

    member_ids = await chat_members(engine, 4, network="discord")
    await queue(engine, [message(m) for m in member_ids])
    settings = discord_settings(discord_dm_interval_seconds=0.25)
    async with running_bot(discord_api, settings, gateway, memory) as discord_bot:
        assert (await discord_bot.bot.deliverer.round(wait_seconds=0)).sent == 4
        sends = [c.at for c in discord_api.called("POST", "/channels/")]
    assert len(sends) == 4
    assert all(later - earlier >= 0.24 for earlier, later in itertools.pairwise(sends))


async def test_a_short_429_is_waited_out_by_discord_py_and_the_dm_sent_once(discord_bot,
                                                                             engine):
    (member_id,) = await chat_members(engine, 1, network="discord")
    await queue(engine, [message(member_id)])
    discord_bot.api.limit_next(f"/channels/{FIRST + 1}/messages", retry_after=0.3)
    done = await discord_bot.bot.deliverer.round(wait_seconds=0)
    assert done.sent == 1
    limited, sent = discord_bot.api.called("POST", f"/channels/{FIRST + 1}/messages")
    assert (limited.status, sent.status) == (429, 200)
    assert sent.at - limited.at >= 0.3
    assert len(discord_bot.api.dms(FIRST)) == 1
    assert set((await delivery_states(engine)).values()) == {"sent"}


async def test_a_long_429_hands_the_summary_back_with_its_retry_after(discord_bot, engine):
    (member_id,) = await chat_members(engine, 1, network="discord")
    await queue(engine, [message(member_id)])
    discord_bot.api.limit_next(f"/channels/{FIRST + 1}/messages", retry_after=120)
    before = datetime.now(UTC)
    done = await discord_bot.bot.deliverer.round(wait_seconds=0)
    assert (done.sent, done.retried) == (0, 1)
    assert len(discord_bot.api.called("POST", f"/channels/{FIRST + 1}/messages")) == 1
    async with engine.connect() as conn:
        state, available_at = (await conn.execute(select(
            outbox_deliveries.c.state, outbox_deliveries.c.available_at))).one()
    available_at = available_at.replace(tzinfo=available_at.tzinfo or UTC)
    assert state == "pending" and available_at >= before + timedelta(seconds=119)
    await lease_ends(engine)
    assert (await discord_bot.bot.deliverer.round(wait_seconds=0)).sent == 1
    assert len(discord_bot.api.dms(FIRST)) == 1


async def test_closed_dms_fail_for_good_and_the_summary_waits_in_summary(discord_bot, engine):
    member_ids = await chat_members(engine, 2, network="discord")
    await queue(engine, [message(m) for m in member_ids])
    discord_bot.api.dms_closed.add(FIRST)
    done = await discord_bot.bot.deliverer.round(wait_seconds=0)
    assert (done.sent, done.unreachable, done.retried) == (1, 1, 0)
    assert sorted((await delivery_states(engine)).values()) == ["sent", "unreachable"]
    async with engine.connect() as conn:
        reason = await conn.scalar(select(identities.c.unreachable_reason).where(
            identities.c.identity == f"discord:{FIRST}"))
    assert "50007" in reason
    await lease_ends(engine)
    assert (await discord_bot.bot.deliverer.round(wait_seconds=0)).unreachable == 0
    refused = discord_bot.api.called("POST", f"/channels/{FIRST + 1}/messages")
    assert [c.status for c in refused] == [403]  # asked once, never again
    answer = await discord_bot.text(FIRST, "summary")
    assert answer.endswith("2026-10: 5.00 EUR shared among 3 things")
