"""Flattr by reaction through the real discord.py client: MESSAGE_REACTION_ADD/REMOVE
dispatches as Discord sends them, a real gateway on each backend behind the proxy."""

import asyncio
import uuid

import pytest
from discord_harness import CHANNEL, GUILD, OTHER_CHANNEL, running_bot

from bots.discord.settings import DiscordSettings
from bots.memory import RedisMemory
from chat_flattrs import flattred
from core import members
from support import require_redis

FAN, AUTHOR, STRANGER, HELPER_BOT = (100000000000000222, 100000000000000111,
                                     100000000000000333, 100000000000000999)
POST, SECOND_POST = 900000000000000001, 900000000000000002
CUSTOM_EMOJI = 700000000000000077


def post(message_id: int = POST, channel_id: int = CHANNEL) -> str:
    return f"discord:{GUILD}/{channel_id}/{message_id}"


@pytest.fixture
async def people(discord_bot, web_member):
    """fan and author, both linked; Discord knows them (and a bot) as users."""
    for user_id in (FAN, AUTHOR, STRANGER):
        discord_bot.api.add_user(user_id)
    discord_bot.api.add_user(HELPER_BOT, bot=True)
    await web_member("fan", identity=f"discord:{FAN}")
    await web_member("author", identity=f"discord:{AUTHOR}")


def flattr_calls(proxy) -> list:
    return [s for s in proxy.requests("/api/v1/flattrs") if s.method == "POST"]


async def test_a_reaction_flattrs_the_post_and_taking_it_away_takes_it_back(
        discord_bot, people, engine, proxy):
    await discord_bot.react(FAN, POST, AUTHOR)
    assert await flattred(engine) == [("fan", post(), "author")]
    (call,) = flattr_calls(proxy)
    assert call.headers["Flattr-Identity"] == f"discord:{FAN}"
    assert call.headers["Idempotency-Key"].startswith("discord-reaction-")
    await discord_bot.unreact(FAN, POST)
    assert await flattred(engine) == []
    await discord_bot.react(FAN, POST, AUTHOR)  # again: a new flattr, not the first replayed
    assert await flattred(engine) == [("fan", post(), "author")]
    # Nothing was said anywhere: no channel message, no DM.
    assert discord_bot.api.called("POST", "/channels/") == []


async def test_a_super_reaction_counts_and_other_emoji_do_not(discord_bot, people, engine):
    await discord_bot.react(FAN, POST, AUTHOR, emoji="👍")
    await discord_bot.react(FAN, POST, AUTHOR, emoji="💸", emoji_id=CUSTOM_EMOJI)  # custom 💸
    assert await flattred(engine) == []
    await discord_bot.react(FAN, POST, AUTHOR, burst=True)
    assert await flattred(engine) == [("fan", post(), "author")]


async def test_an_addition_and_removal_in_quick_succession_are_handled_in_order(
        discord_bot, people, engine):
    from discord_standin import message, user

    # The addition is slow (its author is looked up); the removal right after waits for it.
    discord_bot.api.messages[POST] = message(POST, CHANNEL, user(AUTHOR), "hi", GUILD)
    discord_bot.api.delay_next(f"/channels/{CHANNEL}/messages/{POST}", 0.3)
    await discord_bot.api.dispatch("MESSAGE_REACTION_ADD", discord_bot.events.reaction_add(
        FAN, CHANNEL, POST, None))
    await discord_bot.api.dispatch("MESSAGE_REACTION_REMOVE",
                                   discord_bot.events.reaction_remove(FAN, CHANNEL, POST))
    discord_bot.reactions_sent += 2
    await discord_bot.reactions_handled()
    assert await flattred(engine) == []
    assert len(discord_bot.bot.locks) == 0  # every lock given back


async def test_an_unlinked_reactor_gets_one_dm_a_day_on_how_to_start(discord_bot, people,
                                                                     engine):
    await discord_bot.react(STRANGER, POST, AUTHOR)
    await discord_bot.react(STRANGER, SECOND_POST, AUTHOR)
    assert await flattred(engine) == []
    (dm,) = discord_bot.api.dms(STRANGER)
    assert dm["content"].startswith("Your reaction could flattr that post: use /signup")
    (button,) = dm["components"][0]["components"]
    assert button["url"] == "https://flattr.example"
    assert discord_bot.api.called("POST", f"/channels/{CHANNEL}/") == []  # never in public


async def test_an_unlinked_reactor_with_closed_dms_is_not_asked_again(discord_bot, people):
    discord_bot.api.dms_closed.add(STRANGER)
    await discord_bot.react(STRANGER, POST, AUTHOR)
    await discord_bot.bot.memory.put(f"nudged:{STRANGER}", "", 1)  # a day later
    await asyncio.sleep(1.1)
    await discord_bot.react(STRANGER, SECOND_POST, AUTHOR)
    # One refused DM, then none: the closed DMs are remembered for a day.
    assert len(discord_bot.api.called("POST", f"/channels/{STRANGER + 1}/messages")) == 1


async def test_reacting_to_ones_own_post_flattrs_nothing_even_from_another_account(
        discord_bot, people, engine, proxy):
    await discord_bot.react(AUTHOR, POST, AUTHOR)
    assert flattr_calls(proxy) == []  # not even asked
    assert [d["content"] for d in discord_bot.api.dms(AUTHOR)] == [
        "That post is yours: you can't flattr it."]
    # The author's second Discord account, linked to the same member: the gateway refuses.
    async with engine.begin() as conn:
        author = await members.member_by_identity(conn, f"discord:{AUTHOR}")
        await members.link_identity(conn, author.id, f"discord:{STRANGER}")
    await discord_bot.react(STRANGER, POST, AUTHOR)
    assert len(flattr_calls(proxy)) == 1
    assert await flattred(engine) == []
    assert [d["content"] for d in discord_bot.api.dms(STRANGER)] == [
        "That post is yours: you can't flattr it."]


async def test_bots_reactions_and_bots_posts_are_ignored(discord_bot, people, engine, proxy):
    await discord_bot.react(HELPER_BOT, POST, AUTHOR, bot=True)
    await discord_bot.react(FAN, SECOND_POST, HELPER_BOT)
    await discord_bot.react(FAN, SECOND_POST + 1, 100000000000000444)  # a webhook's: unknown
    assert await flattred(engine) == []
    assert flattr_calls(proxy) == []
    # Who is a bot is asked of Discord once an author, then remembered.
    assert len(discord_bot.api.called("GET", f"/users/{HELPER_BOT}")) == 1
    await discord_bot.react(FAN, SECOND_POST + 2, HELPER_BOT)
    assert len(discord_bot.api.called("GET", f"/users/{HELPER_BOT}")) == 1


async def test_without_message_author_id_the_post_is_read_to_find_its_author(
        discord_bot, people, engine):
    from discord_standin import message, user

    discord_bot.api.messages[POST] = message(POST, CHANNEL, user(AUTHOR), "hi", GUILD)
    await discord_bot.react(FAN, POST, None)
    assert await flattred(engine) == [("fan", post(), "author")]
    assert discord_bot.api.called("GET", f"/channels/{CHANNEL}/messages/{POST}")


async def test_the_post_of_an_unlinked_author_is_held_and_the_author_invited_once(
        discord_bot, people, engine, web_member):
    await web_member("reader", identity="discord:100000000000000555")
    await discord_bot.react(FAN, POST, STRANGER)
    await discord_bot.react(100000000000000555, POST, STRANGER)
    await discord_bot.react(FAN, SECOND_POST, STRANGER)
    assert await flattred(engine) == [("fan", post(), None), ("reader", post(), None),
                                      ("fan", post(SECOND_POST), None)]
    (invitation,) = discord_bot.api.dms(STRANGER)
    assert invitation["content"].startswith("1 flattrs of 1 of your posts wait for you")
    # The author links: what was held is theirs.
    async with engine.begin() as conn:
        stranger = await members.create_member(conn, "stranger")
        await members.link_identity(conn, stranger.id, f"discord:{STRANGER}")
    assert {owner for _, _, owner in await flattred(engine)} == {"stranger"}


async def test_the_servers_emoji_and_channels_decide_what_flattrs(discord_bot, people, engine,
                                                                  gateway):
    changed = await gateway.change_chat_settings(
        f"discord:{GUILD}", emoji=f"flattr:{CUSTOM_EMOJI}", channels=[str(OTHER_CHANNEL)])
    discord_bot.bot.servers.remember(changed)
    await discord_bot.react(FAN, POST, AUTHOR, channel_id=OTHER_CHANNEL)  # 💸: no more
    await discord_bot.react(FAN, POST, AUTHOR, emoji="flattr", emoji_id=CUSTOM_EMOJI)  # channel
    assert await flattred(engine) == []
    await discord_bot.react(FAN, POST, AUTHOR, emoji="renamed", emoji_id=CUSTOM_EMOJI,
                            channel_id=OTHER_CHANNEL)
    assert await flattred(engine) == [("fan", post(channel_id=OTHER_CHANNEL), "author")]
    await discord_bot.unreact(FAN, POST, emoji="flattr", emoji_id=CUSTOM_EMOJI,
                              channel_id=OTHER_CHANNEL)
    assert await flattred(engine) == []


async def test_a_reaction_storm_is_cut_to_the_members_limit(discord_api, discord_settings,
                                                            gateway, memory, web_member,
                                                            engine, proxy):
    settings: DiscordSettings = discord_settings(discord_reaction_burst=3,
                                                 discord_reaction_refill_seconds=3600)
    async with running_bot(discord_api, settings, gateway, memory) as discord_bot:
        discord_bot.api.add_user(AUTHOR)
        await web_member("fan", identity=f"discord:{FAN}")
        await web_member("author", identity=f"discord:{AUTHOR}")
        for n in range(8):
            await discord_bot.react(FAN, POST + n, AUTHOR)
        assert len(await flattred(engine)) == 3
        assert len(flattr_calls(proxy)) == 3
        (slow_down,) = discord_bot.api.dms(FAN)
        assert slow_down["content"].startswith("You react faster than I can flattr")


async def test_a_removal_over_the_limit_still_takes_the_flattr_back(
        discord_api, discord_settings, gateway, memory, web_member, engine):
    settings: DiscordSettings = discord_settings(discord_reaction_burst=1,
                                                 discord_reaction_refill_seconds=3600)
    async with running_bot(discord_api, settings, gateway, memory) as discord_bot:
        discord_bot.api.add_user(AUTHOR)
        await web_member("fan", identity=f"discord:{FAN}")
        await web_member("author", identity=f"discord:{AUTHOR}")
        await discord_bot.react(FAN, POST, AUTHOR)
        await discord_bot.react(FAN, SECOND_POST, AUTHOR)  # over the limit: nothing
        assert await flattred(engine) == [("fan", post(), "author")]
        await discord_bot.unreact(FAN, POST)
        await discord_bot.unreact(FAN, SECOND_POST)
        assert await flattred(engine) == []


async def test_with_redis_a_nudge_a_day_holds_across_a_restart(discord_api, discord_settings,
                                                               gateway, web_member):
    url, namespace = require_redis(), f"flattr-discord-test-{uuid.uuid4().hex[:10]}"
    discord_api.add_user(AUTHOR)
    await web_member("author", identity=f"discord:{AUTHOR}")
    for message_id in (POST, SECOND_POST):  # the same reactor, before and after a restart
        memory = RedisMemory(url, namespace=namespace)
        try:
            async with running_bot(discord_api, discord_settings(), gateway,
                                   memory) as discord_bot:
                await discord_bot.react(STRANGER, message_id, AUTHOR)
        finally:
            await memory.close()
    assert len(discord_api.dms(STRANGER)) == 1
    assert len(discord_api.identifies) == 2
