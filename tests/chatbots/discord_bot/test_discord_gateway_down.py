"""The gateway down, limiting or losing answers: commands answer plainly and ephemerally,
flattrs and take-backs are owed and sent once it is back, nothing lost and nothing doubled."""

import pytest
from discord_harness import CHANNEL, GUILD

from chat_flattrs import flattred
from support import wait_until

FAN, AUTHOR = 100000000000000222, 100000000000000111
POST = 900000000000000001
URL = "https://example.com/while-down"


@pytest.fixture
async def people(discord_bot, web_member):
    discord_bot.api.add_user(AUTHOR)
    await web_member("fan", identity=f"discord:{FAN}")
    await web_member("author", identity=f"discord:{AUTHOR}")


def flattr_posts(proxy) -> list:
    return [s for s in proxy.requests("/api/v1/flattrs") if s.method == "POST"]


async def flattrs_become(engine, count: int) -> bool:
    async def check() -> bool:
        return len(await flattred(engine)) == count

    return await wait_until(check, 10)


async def test_a_command_while_the_gateway_is_down_says_so_and_changes_nothing(
        discord_bot, people, engine, proxy):
    proxy.down = True
    assert await discord_bot.text(FAN, "balance") == (
        "Flattr can't be reached right now. Nothing changed: try again in a minute.")
    assert await discord_bot.text(FAN, "signup") == (
        "Flattr can't be reached right now. Nothing changed: try again in a minute.")
    proxy.down = False
    assert (await discord_bot.text(FAN, "balance")).startswith("**fan**")
    assert len(discord_bot.bot.pending) == 0


async def test_a_flattr_command_while_down_is_sent_once_when_the_gateway_is_back(
        discord_bot, people, engine, proxy):
    proxy.down = True
    assert await discord_bot.text(FAN, "flattr", url=URL) == (
        f"Flattr can't be reached right now. I'll flattr {URL} as soon as it is back.")
    assert await flattred(engine) == []
    proxy.down = False
    assert await flattrs_become(engine, 1)
    assert await flattred(engine) == [("fan", URL, None)]
    keys = {s.headers["Idempotency-Key"] for s in flattr_posts(proxy)}
    assert len(keys) == 1  # every try with the first key
    assert await discord_bot.text(FAN, "flattr", url=URL) == (
        f"You flattred that already this month: {URL}")


async def test_reactions_while_down_are_owed_and_the_latest_wins(discord_bot, people, engine,
                                                                 proxy):
    proxy.down = True
    await discord_bot.react(FAN, POST, AUTHOR)
    await discord_bot.react(FAN, POST + 1, AUTHOR)
    await discord_bot.unreact(FAN, POST + 1)  # replaces the flattr owed for that post
    (told,) = discord_bot.api.dms(FAN)  # once, not a DM a reaction
    assert told["content"] == ("Flattr can't be reached right now. I'll flattr that post as "
                               "soon as it is back.")
    assert len(discord_bot.bot.pending) == 2
    proxy.down = False
    assert await flattrs_become(engine, 1)
    assert await wait_until(_empty(discord_bot.bot.pending), 10)
    assert await flattred(engine) == [("fan", f"discord:{GUILD}/{CHANNEL}/{POST}", "author")]


async def test_a_lost_answer_is_tried_again_with_the_same_key_and_flattrs_once(
        discord_bot, people, engine, proxy):
    proxy.lose_next(1, path="/api/v1/flattrs")
    await discord_bot.react(FAN, POST, AUTHOR)
    assert await flattred(engine) == [("fan", f"discord:{GUILD}/{CHANNEL}/{POST}", "author")]
    first, again = flattr_posts(proxy)
    assert (first.outcome, again.outcome) == ("lost", "forwarded")
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]
    assert discord_bot.api.dms(FAN) == []


async def test_a_rate_limited_command_says_when_to_try_again(discord_bot, people, proxy):
    proxy.limit_next(5, retry_after=30, path="/api/v1/me")
    assert await discord_bot.text(FAN, "stats") == (
        "That was a lot at once: try again in 30 s.")


def _empty(pending):
    async def check() -> bool:
        return len(pending) == 0

    return check


async def test_a_removal_after_an_owed_flattr_wins_once_the_gateway_is_back(
        discord_bot, people, engine, proxy):
    pending = discord_bot.bot.pending
    pending.first_wait_seconds = 3600.0  # the owed work waits for this test to send it
    proxy.down = True
    await discord_bot.react(FAN, POST, AUTHOR)
    assert len(pending) == 1
    proxy.down = False
    await discord_bot.unreact(FAN, POST)  # reaches the gateway before the owed flattr
    assert await pending.run_once()
    assert await flattred(engine) == []
    assert len(pending) == 0


async def test_a_reaction_after_an_owed_take_back_stays(discord_bot, people, engine, proxy):
    pending = discord_bot.bot.pending
    pending.first_wait_seconds = 3600.0
    await discord_bot.react(FAN, POST, AUTHOR)
    proxy.down = True
    await discord_bot.unreact(FAN, POST)
    assert len(pending) == 1
    proxy.down = False
    await discord_bot.react(FAN, POST, AUTHOR)  # reaches the gateway before the take-back
    assert await pending.run_once()
    assert await flattred(engine) == [("fan", f"discord:{GUILD}/{CHANNEL}/{POST}", "author")]
    assert len(pending) == 0


async def test_a_flattr_made_whose_invitation_fails_is_not_owed_again(discord_bot, people,
                                                                      engine, proxy):
    stranger = 100000000000000333  # no Flattr account: the flattr is held, they are invited
    discord_bot.api.add_user(stranger)
    proxy.limit_next(5, retry_after=30, path="/api/v1/bot/waiting")
    await discord_bot.react(FAN, POST, stranger)
    assert await flattred(engine) == [("fan", f"discord:{GUILD}/{CHANNEL}/{POST}", None)]
    assert len(discord_bot.bot.pending) == 0
    assert discord_bot.api.dms(FAN) == []  # not told that Flattr can't be reached
    assert discord_bot.api.dms(stranger) == []
    assert len(flattr_posts(proxy)) == 1
