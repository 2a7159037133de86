"""The bot as `flattr bot telegram` runs it: long polling the Bot API stand-in (getUpdates
naming message_reaction), its delivery loop, and how the command starts or refuses to."""

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp
from outbox_messages import message, queue

from bots.telegram.run import serve
from bots.telegram.settings import TelegramSettings
from chat_flattrs import flattred
from core import members
from support import wait_until
from telegram_standin import BOT_TOKEN, Updates, group

FAN, AUTHOR = 222, 111
CHAT = group()
FLATTR = Path(sys.executable).parent / "flattr"


async def test_a_polling_bot_flattrs_by_reaction_and_delivers_summaries(
        bot_api, telegram_settings, engine):
    stop = asyncio.Event()
    running = asyncio.create_task(serve(telegram_settings(), stop))
    try:
        (polled, *_) = await bot_api.wait_for("getUpdates")
        assert "message_reaction" in polled["allowed_updates"]
        assert bot_api.called("setMyCommands")
        updates = Updates()
        post = updates.message(CHAT, {"id": AUTHOR, "is_bot": False, "first_name": "A"}, "hi")
        message_id = post["message"]["message_id"]
        await bot_api.push(updates.command(FAN, "/start"), updates.command(AUTHOR, "/start"),
                           post, updates.reaction(CHAT, message_id, FAN, new=["👍"]))
        assert await wait_until(lambda: _count(engine, 1), 10)
        assert await flattred(engine) == [("te222", f"telegram:{CHAT['id']}/{message_id}",
                                           "te111")]
        async with engine.connect() as conn:
            fan = await members.member_by_identity(conn, f"telegram:{FAN}")
        await queue(engine, [message(fan.id)])
        (sent,) = await bot_api.wait_for("sendMessage", text=message(fan.id).text, seconds=10)
        assert sent["chat_id"] == FAN
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
    offsets = [p.get("offset") for p in bot_api.called("getUpdates")]
    assert max(o or 0 for o in offsets) > post["update_id"]  # every update confirmed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _count(engine, expected: int) -> bool:
    return len(await flattred(engine)) == expected


async def run_command(env: dict[str, str]) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    process = await asyncio.create_subprocess_exec(
        str(FLATTR), "bot", "telegram", env={**clean, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, err.decode()


async def test_the_command_without_a_token_says_so_in_one_line():
    code, err = await run_command({})
    assert code == 2
    assert err == ("flattr bot telegram: set FLATTR_TELEGRAM_TOKEN to the token BotFather "
                   "gave the bot\n")
    code, err = await run_command({"FLATTR_TELEGRAM_TOKEN": BOT_TOKEN})
    assert code == 2 and err.count("\n") == 1 and "FLATTR_GATEWAY_TOKEN" in err


async def test_a_token_the_bot_api_refuses_ends_the_command_in_one_line(bot_api):
    code, err = await run_command({"FLATTR_TELEGRAM_TOKEN": "1:wrong",
                                   "FLATTR_GATEWAY_TOKEN": "flattr_x",
                                   "FLATTR_TELEGRAM_BASE_URL": bot_api.root})
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        "flattr bot telegram: the Bot API refused FLATTR_TELEGRAM_TOKEN")
    assert "Traceback" not in err


async def test_with_a_webhook_the_bot_takes_updates_posted_with_its_secret(
        bot_api, telegram_settings, engine):
    port = free_port()
    settings = telegram_settings(telegram_webhook_url="https://bot.example/telegram/hook",
                                 telegram_webhook_port=port, telegram_webhook_secret="s3cret")
    stop = asyncio.Event()
    running = asyncio.create_task(serve(settings, stop))
    try:
        (hook,) = await bot_api.wait_for("setWebhook")
        assert hook["url"] == "https://bot.example/telegram/hook"
        assert hook["secret_token"] == "s3cret"
        assert "message_reaction" in hook["allowed_updates"]
        update = Updates().command(FAN, "/start")
        url = f"http://127.0.0.1:{port}/telegram/hook"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=update) as refused:
                assert refused.status == 403
            async with session.post(url, json=update, headers={
                    "X-Telegram-Bot-Api-Secret-Token": "s3cret"}) as taken:
                assert taken.status == 200
        await bot_api.wait_for("sendMessage", chat_id=FAN)
        assert bot_api.called("getUpdates") == []
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
    async with engine.connect() as conn:
        assert (await members.member_by_identity(conn, f"telegram:{FAN}")).handle == "te222"


async def test_a_webhook_without_a_secret_does_not_start():
    code, err = await run_command({"FLATTR_TELEGRAM_TOKEN": BOT_TOKEN,
                                   "FLATTR_GATEWAY_TOKEN": "flattr_x",
                                   "FLATTR_TELEGRAM_WEBHOOK_URL": "https://bot.example/hook"})
    assert code == 2
    assert err == ("flattr bot telegram: set FLATTR_TELEGRAM_WEBHOOK_SECRET (1 to 256 letters, "
                   "digits, _ and -) whenever FLATTR_TELEGRAM_WEBHOOK_URL is set\n")


async def test_the_webhook_refuses_forged_and_malformed_posts(bot_api, telegram_settings,
                                                             engine):
    port = free_port()
    settings = telegram_settings(telegram_webhook_url="https://bot.example/hook",
                                 telegram_webhook_port=port, telegram_webhook_secret="s3cret")
    stop = asyncio.Event()
    running = asyncio.create_task(serve(settings, stop))
    secret = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
    try:
        await bot_api.wait_for("setWebhook")
        url = f"http://127.0.0.1:{port}/hook"
        update = Updates().command(FAN, "/start")
        async with aiohttp.ClientSession() as session:
            for headers in ({"X-Telegram-Bot-Api-Secret-Token": "s3cres"},
                            {"X-Telegram-Bot-Api-Secret-Token": ""}, {}):
                async with session.post(url, json=update, headers=headers) as forged:
                    assert forged.status == 403
            for body in (b"[1, 2]", b'"update"', b"42", b"null", b"{not json", b"\xff\xfe",
                         b'{"update_id": 1, "message": 5}'):
                async with session.post(url, data=body, headers={
                        **secret, "Content-Type": "application/json"}) as bad:
                    assert bad.status == 400, body
        assert bot_api.called("sendMessage") == []
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)


async def test_the_base_url_may_be_given_in_ptb_s_form_ending_in_bot(bot_api,
                                                                     telegram_settings):
    def given(base_url: str) -> TelegramSettings:
        return telegram_settings().model_copy(update={"telegram_base_url": base_url})

    for base_url in (f"{bot_api.root}/bot", f"{bot_api.root}/bot/", f"{bot_api.root}/"):
        assert given(base_url).api_root == bot_api.root
    stop = asyncio.Event()
    running = asyncio.create_task(serve(given(f"{bot_api.root}/bot"), stop))
    try:
        await bot_api.wait_for("getUpdates")  # reached: not .../bot/bot<token>/getMe
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
