"""The bot as `flattr bot discord` runs it: its loops on, a reaction flattring and a summary
delivered; and how the command starts or refuses to, in one line."""

import asyncio
import json
import os
import sys
from pathlib import Path

from outbox_messages import message, queue

from bots.discord.run import serve
from chat_flattrs import flattred
from core import members
from discord_standin import BOT_TOKEN, Events
from support import wait_until

FAN, AUTHOR = 100000000000000222, 100000000000000111
FLATTR = Path(sys.executable).parent / "flattr"


async def test_the_running_bot_flattrs_by_reaction_and_delivers_summaries(
        discord_api, discord_settings, web_member, engine):
    from discord_harness import CHANNEL, GUILD

    fan = await web_member("fan", identity=f"discord:{FAN}")
    await web_member("author", identity=f"discord:{AUTHOR}")
    discord_api.add_user(AUTHOR)
    stop = asyncio.Event()
    running = asyncio.create_task(serve(discord_settings(), stop))
    try:
        await discord_api.connected()
        await discord_api.dispatch("MESSAGE_REACTION_ADD", Events(GUILD).reaction_add(
            FAN, CHANNEL, 900000000000000001, AUTHOR))

        async def one_flattr() -> bool:
            return len(await flattred(engine)) == 1

        assert await wait_until(one_flattr, 10)
        async with engine.connect() as conn:
            found = await members.member_by_identity(conn, f"discord:{FAN}")
        assert found.id == fan.id
        await queue(engine, [message(fan.id)])
        await discord_api.wait_for("POST", f"/channels/{discord_api.dm_channel(FAN)}/messages",
                                   seconds=15)
        assert discord_api.dms(FAN)[0]["content"] == message(fan.id).text
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)


async def run_command(env: dict[str, str]) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    process = await asyncio.create_subprocess_exec(
        str(FLATTR), "bot", "discord", env={**clean, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode, err.decode()


async def test_the_command_without_a_token_says_so_in_one_line():
    code, err = await run_command({})
    assert code == 2
    assert err == ("flattr bot discord: set FLATTR_DISCORD_TOKEN to the bot token of your "
                   "application (Discord Developer Portal, Bot)\n")
    code, err = await run_command({"FLATTR_DISCORD_TOKEN": BOT_TOKEN})
    assert code == 2 and err.count("\n") == 1 and "FLATTR_GATEWAY_TOKEN" in err
    code, err = await run_command({"FLATTR_DISCORD_TOKEN": BOT_TOKEN,
                                   "FLATTR_GATEWAY_TOKEN": "flattr_x",
                                   "FLATTR_DISCORD_API_URL": "discord.example"})
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("flattr bot discord: FLATTR_DISCORD_API_URL: ")


async def test_empty_settings_as_env_files_write_them_say_so_in_one_line():
    # `.env.example` writes FLATTR_DISCORD_TOKEN= and FLATTR_GATEWAY_TOKEN= until filled in.
    # Discord is a closed port here: a bot that started anyway would end in a traceback.
    closed = {"FLATTR_DISCORD_API_URL": "http://127.0.0.1:9/api/v10",
              "FLATTR_DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/"}
    code, err = await run_command({**closed, "FLATTR_DISCORD_TOKEN": " ",
                                   "FLATTR_GATEWAY_TOKEN": "flattr_x"})
    assert (code, err) == (2, "flattr bot discord: set FLATTR_DISCORD_TOKEN to the bot token "
                              "of your application (Discord Developer Portal, Bot)\n")
    code, err = await run_command({**closed, "FLATTR_DISCORD_TOKEN": BOT_TOKEN,
                                   "FLATTR_GATEWAY_TOKEN": ""})
    assert (code, err) == (2, "flattr bot discord: set FLATTR_GATEWAY_TOKEN to a token with "
                              "the bot scope (flattr token create HANDLE --scopes bot)\n")
    code, err = await run_command({**closed, "FLATTR_DISCORD_TOKEN": BOT_TOKEN,
                                   "FLATTR_GATEWAY_TOKEN": "flattr_x", "FLATTR_GATEWAY_URL": ""})
    assert (code, err) == (2, "flattr bot discord: FLATTR_GATEWAY_URL is empty: set it, or "
                              "leave it out for its default\n")


async def test_a_token_discord_refuses_ends_the_command_in_one_line(discord_api):
    code, err = await run_command({"FLATTR_DISCORD_TOKEN": "wrong",
                                   "FLATTR_GATEWAY_TOKEN": "flattr_x",
                                   "FLATTR_DISCORD_API_URL": discord_api.api_url,
                                   "FLATTR_DISCORD_GATEWAY_URL": discord_api.gateway_url})
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        "flattr bot discord: Discord refused FLATTR_DISCORD_TOKEN")
    assert "Traceback" not in err
    assert [(c.method, c.path) for c in discord_api.calls] == [("GET", "/users/@me")]


async def test_with_log_format_json_every_log_line_is_one_json_object(discord_api):
    code, err = await run_command({"FLATTR_DISCORD_TOKEN": "wrong",
                                   "FLATTR_GATEWAY_TOKEN": "flattr_x",
                                   "FLATTR_LOG_FORMAT": "JSON",
                                   "FLATTR_DISCORD_API_URL": discord_api.api_url,
                                   "FLATTR_DISCORD_GATEWAY_URL": discord_api.gateway_url})
    *logged, said = err.strip().splitlines()
    assert (code, said) == (1, "flattr bot discord: Discord refused FLATTR_DISCORD_TOKEN")
    records = [json.loads(line) for line in logged]
    assert records, err
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"].startswith("discord") for r in records)
    code, err = await run_command({"FLATTR_DISCORD_TOKEN": "wrong", "FLATTR_LOG_FORMAT": "xml",
                                   "FLATTR_GATEWAY_TOKEN": "flattr_x"})
    assert code == 2 and err.startswith("flattr bot discord: FLATTR_LOG_FORMAT: ")
    assert err.count("\n") == 1
