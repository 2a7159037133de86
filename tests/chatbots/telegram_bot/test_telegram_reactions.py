"""Flattr by reaction in groups, through the real PTB Application, with the author memory in
a real Redis and in the LRU, against a real gateway on each backend."""

import uuid

import pytest
from sqlalchemy import select

from bots.memory import LruMemory, RedisMemory
from chat_flattrs import flattred
from core import members
from core.schema import identities
from support import require_redis
from telegram_standin import group

AUTHOR, FAN, OTHER, STRANGER = 111, 222, 333, 444
CHAT = group()
POST = f"telegram:{CHAT['id']}"


@pytest.fixture(params=["lru", "redis"])
def memory(request):
    if request.param == "lru":
        return LruMemory(max_entries=1000)
    return RedisMemory(require_redis(), namespace=f"flattr-test-{uuid.uuid4().hex[:10]}")


async def post_by(telegram, user_id: int, text: str = "a good post") -> int:
    update = telegram.updates.message(CHAT, {"id": user_id, "is_bot": False,
                                             "first_name": "A"}, text)
    await telegram.feed(update)
    return update["message"]["message_id"]


def react(telegram, message_id: int, user_id: int, old=(), new=("👍",)):
    return telegram.updates.reaction(CHAT, message_id, user_id, old=list(old), new=list(new))


async def test_a_reaction_flattrs_the_post_and_taking_it_away_takes_it_back(telegram, engine):
    await telegram.start(AUTHOR)
    await telegram.start(FAN)
    message_id = await post_by(telegram, AUTHOR)
    thing = f"{POST}/{message_id}"
    await telegram.feed(react(telegram, message_id, FAN))
    assert await flattred(engine) == [("te222", thing, "te111")]
    # Another emoji beside it, or reacting again, is still one flattr.
    await telegram.feed(react(telegram, message_id, FAN, old=["👍"], new=["👍", "🔥"]),
                        react(telegram, message_id, FAN, old=[], new=["👍"]))
    assert len(await flattred(engine)) == 1
    await telegram.feed(react(telegram, message_id, FAN, old=["👍", "🔥"], new=["🔥"]))
    assert await flattred(engine) == []
    await telegram.feed(react(telegram, message_id, FAN, old=["🔥"], new=[]),
                        react(telegram, message_id, FAN, new=["❤"]))
    assert await flattred(engine) == []
    await telegram.feed(react(telegram, message_id, FAN, old=["❤"], new=["👍"]))
    assert await flattred(engine) == [("te222", thing, "te111")]
    assert telegram.api.sent_to(CHAT["id"]) == []  # nothing said in the group


async def test_reactions_handled_at_once_keep_their_order(telegram, engine):
    await telegram.start(FAN)
    message_id = await post_by(telegram, AUTHOR)
    await telegram.feed(react(telegram, message_id, FAN, new=["❤"]))  # the emoji is known
    for _ in range(5):
        await telegram.feed_at_once(react(telegram, message_id, FAN),
                                    react(telegram, message_id, FAN, old=["👍"], new=[]))
        assert await flattred(engine) == []
    await telegram.feed_at_once(*(react(telegram, message_id, FAN) for _ in range(5)))
    assert len(await flattred(engine)) == 1
    assert len(telegram.app.update_processor.order) == 0  # nothing left behind


async def test_the_chat_s_own_emoji_flattrs_and_the_default_no_longer(telegram, engine,
                                                                     gateway):
    await gateway.change_chat_settings(f"telegram:{CHAT['id']}", emoji="🔥")
    await telegram.start(FAN)
    message_id = await post_by(telegram, AUTHOR)
    await telegram.feed(react(telegram, message_id, FAN, new=["👍"]))
    assert await flattred(engine) == []
    await telegram.feed(react(telegram, message_id, FAN, old=["👍"], new=["👍", "🔥"]))
    assert [row[1] for row in await flattred(engine)] == [f"{POST}/{message_id}"]


async def test_a_post_the_bot_never_saw_is_not_guessed(telegram, engine):
    await telegram.start(FAN)
    await telegram.feed(react(telegram, 77, FAN),
                        react(telegram, 77, FAN, old=["👍"], new=[]),
                        react(telegram, 77, FAN))
    assert await flattred(engine) == []
    assert telegram.said_to(FAN)[1:] == [
        "I can't flattr that post in Readers: I did not see it being posted, so I don't "
        "know whose it is."]


async def test_an_unlinked_reactor_gets_one_private_nudge_if_they_started_the_bot(telegram,
                                                                                   engine):
    message_id = await post_by(telegram, AUTHOR)
    await telegram.feed(react(telegram, message_id, STRANGER))
    assert telegram.api.called("sendMessage") == []  # never talked: Telegram forbids it
    await telegram.feed(telegram.updates.command(OTHER, "/help"))  # talked, no account
    await telegram.feed(react(telegram, message_id, OTHER),
                        react(telegram, message_id, OTHER, old=["👍"], new=[]),
                        react(telegram, message_id, OTHER))
    nudges = telegram.api.called("sendMessage", chat_id=OTHER)[1:]
    assert len(nudges) == 1 and nudges[0]["text"].startswith(
        "Your reaction in Readers could flattr that post: make your Flattr account")
    (button,) = nudges[0]["reply_markup"]["inline_keyboard"][0]
    assert button["url"] == "https://t.me/flattr_test_bot?start=join"
    assert await flattred(engine) == [] and telegram.api.sent_to(CHAT["id"]) == []


async def test_self_flattr_is_refused_also_through_another_identity(telegram, engine):
    await telegram.start(AUTHOR)
    async with engine.begin() as conn:  # the same member has a second Telegram account
        member = await members.member_by_identity(conn, f"telegram:{AUTHOR}")
        await members.link_identity(conn, member.id, f"telegram:{OTHER}")
    await telegram.feed(telegram.updates.command(OTHER, "/help"))
    message_id = await post_by(telegram, AUTHOR)
    await telegram.feed(react(telegram, message_id, AUTHOR), react(telegram, message_id, OTHER))
    assert await flattred(engine) == []
    assert telegram.said_to(AUTHOR)[-1] == "That post is yours: you can't flattr it."
    assert telegram.said_to(OTHER)[-1] == "That post is yours: you can't flattr it."


async def test_an_unlinked_author_is_held_for_and_invited_once_a_month(telegram, engine):
    await telegram.start(FAN)
    await telegram.start(OTHER)
    silent = await post_by(telegram, STRANGER)  # never talked to the bot
    await telegram.feed(react(telegram, silent, FAN))
    assert await flattred(engine) == [("te222", f"{POST}/{silent}", None)]
    assert telegram.said_to(STRANGER) == []
    await telegram.feed(telegram.updates.command(AUTHOR, "/help"))  # talked, no account
    first, second = await post_by(telegram, AUTHOR), await post_by(telegram, AUTHOR)
    await telegram.feed(react(telegram, first, FAN), react(telegram, second, OTHER),
                        react(telegram, first, OTHER))
    invitations = telegram.said_to(AUTHOR)[1:]
    assert invitations == [
        "1 flattrs of 1 of your posts wait for you this month ("
        f"{invitations[0].split('(')[1].split(')')[0]}). Send /start to make your Flattr "
        "account, or /link CODE to link yours, and they are yours."]
    async with engine.connect() as conn:
        assert await conn.scalar(select(identities.c.id).where(
            identities.c.identity == f"telegram:{AUTHOR}")) is None


async def test_a_channel_s_post_in_its_discussion_group_is_the_claimer_s(telegram, engine):
    news = {"id": -1009876543210, "type": "channel", "title": "News"}
    await telegram.start(AUTHOR)
    await telegram.start(FAN)
    forwarded = telegram.updates.message(CHAT, {"id": 777000, "is_bot": False,
                                                "first_name": "Telegram"}, "news!",
                                         sender_chat=news)
    await telegram.feed(forwarded)
    message_id = forwarded["message"]["message_id"]
    await telegram.feed(react(telegram, message_id, FAN))
    assert await flattred(engine) == [("te222", f"{POST}/{message_id}", None)]  # held
    telegram.api.add_channel(news["id"], "flattr_news", "News")
    telegram.api.members[(news["id"], AUTHOR)] = "creator"
    await telegram.feed(telegram.updates.command(AUTHOR, "/claim @flattr_news"))
    again = telegram.updates.message(CHAT, None, "more news", sender_chat=news)
    await telegram.feed(again, react(telegram, again["message"]["message_id"], FAN))
    assert (await flattred(engine))[-1] == (
        "te222", f"{POST}/{again['message']['message_id']}", "te111")


async def test_flattr_in_reply_to_a_channel_s_post_in_its_discussion_group_is_the_claimer_s(
        telegram, engine):
    news = {"id": -1009876543210, "type": "channel", "title": "News"}
    await telegram.start(AUTHOR)
    await telegram.start(FAN)
    telegram.api.add_channel(news["id"], "flattr_news", "News")
    telegram.api.members[(news["id"], AUTHOR)] = "creator"
    await telegram.feed(telegram.updates.command(AUTHOR, "/claim @flattr_news"))
    # Telegram forwards the channel's post from its service account 777000, as the channel.
    forwarded = telegram.updates.message(CHAT, {"id": 777000, "is_bot": False,
                                                "first_name": "Telegram"}, "news!",
                                         sender_chat=news)
    await telegram.feed(forwarded, telegram.updates.command(
        FAN, "/flattr", chat=CHAT, reply_to=forwarded["message"]))
    message_id = forwarded["message"]["message_id"]
    assert await flattred(engine) == [("te222", f"{POST}/{message_id}", "te111")]
    async with engine.connect() as conn:
        assert await conn.scalar(select(identities.c.id).where(
            identities.c.identity == "telegram:777000")) is None


async def test_a_message_telegram_did_not_take_is_sent_the_next_time(telegram, engine):
    await telegram.start(FAN)
    telegram.api.limit_next("sendMessage", 0.01, 2)  # waited out once, then given up
    await telegram.feed(react(telegram, 77, FAN))
    assert telegram.said_to(FAN)[1:] == []
    await telegram.feed(react(telegram, 77, FAN, old=["👍"], new=[]), react(telegram, 77, FAN))
    assert telegram.said_to(FAN)[1:] == [
        "I can't flattr that post in Readers: I did not see it being posted, so I don't "
        "know whose it is."]
    await telegram.feed(react(telegram, 77, FAN, old=["👍"], new=[]), react(telegram, 77, FAN))
    assert len(telegram.said_to(FAN)) == 2  # once sent, once
