"""The bot's session with Discord: login over REST, the commands synced, IDENTIFY with the
default intents only, heartbeats, and a dropped connection resumed without losing a
reaction."""

import asyncio

import discord
from discord_harness import CHANNEL, GUILD

from chat_flattrs import flattred
from discord_standin import APPLICATION_ID, BOT_TOKEN
from support import wait_until

FAN, AUTHOR = 100000000000000222, 100000000000000111
COMMAND_NAMES = {"signup", "link", "unlink", "web", "balance", "budget", "topup", "stats",
                 "summary", "flattr", "unflattr", "flattr-settings", "Flattr this post"}


async def test_the_bot_logs_in_syncs_its_commands_and_identifies_without_privileged_intents(
        discord_bot):
    api = discord_bot.api
    assert [(c.method, c.path) for c in api.calls[:3]] == [
        ("GET", "/users/@me"), ("GET", "/oauth2/applications/@me"),
        ("PUT", f"/applications/{APPLICATION_ID}/commands")]
    synced = {c["name"]: c for c in api.calls[2].body}
    assert set(synced) == COMMAND_NAMES
    assert synced["Flattr this post"]["type"] == 3  # a message context menu
    settings = synced["flattr-settings"]
    assert int(settings["default_member_permissions"]) == (discord.Permissions(
        manage_guild=True).value)
    assert settings["contexts"] == [0]  # in servers only
    assert [o["name"] for o in synced["budget"]["options"]] == ["amount"]
    assert synced["budget"]["options"][0]["required"] is False
    assert [(o["name"], o["required"]) for o in synced["topup"]["options"]] == [
        ("amount", False)]  # /topup alone says how, with the limits
    (identify,) = api.identifies
    assert identify["token"] == BOT_TOKEN
    intents = discord.Intents._from_value(identify["intents"])
    assert intents == discord.Intents.default()
    assert not (intents.message_content or intents.members or intents.presences)
    assert intents.guild_reactions and intents.guilds


async def test_heartbeats_are_sent_and_acknowledged(discord_bot):
    assert await wait_until(_async(lambda: discord_bot.api.heartbeats >= 3), 5)
    assert discord_bot.bot.latency < 1.0  # an ACK came back for the last one


async def test_a_dropped_connection_is_resumed_and_a_reaction_sent_meanwhile_counts(
        discord_bot, web_member, engine):
    await web_member("fan", identity=f"discord:{FAN}")
    await web_member("author", identity=f"discord:{AUTHOR}")
    discord_bot.api.add_user(AUTHOR)
    api = discord_bot.api
    await api.drop()
    # Discord keeps the dispatch for the session; the client resumes and gets it.
    await discord_bot.react(FAN, 900000000000000001, AUTHOR)
    await api.connected()
    assert [r["session_id"] for r in api.resumes] == ["session-1"]
    assert len(api.identifies) == 1
    assert await flattred(engine) == [("fan", f"discord:{GUILD}/{CHANNEL}/900000000000000001",
                                       "author")]
    await api.reconnect()  # op 7: Discord asks the client to come back
    await discord_bot.react(FAN, 900000000000000002, AUTHOR)
    assert len(api.resumes) == 2 and len(api.identifies) == 1
    assert len(await flattred(engine)) == 2


def _async(condition):
    async def check() -> bool:
        await asyncio.sleep(0)
        return condition()

    return check
