"""The gateway down or losing answers: the user is told privately, the flattr is owed and
sent when the gateway is back, and nothing is lost or made twice."""

from sqlalchemy import func, select

from core.schema import flattrs
from telegram_standin import group

FAN, AUTHOR = 222, 111
CHAT = group()
FLATTRS = "/api/v1/flattrs"


async def count(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(flattrs))


async def posted(telegram) -> int:
    update = telegram.updates.message(CHAT, {"id": AUTHOR, "is_bot": False,
                                             "first_name": "A"}, "a post")
    await telegram.feed(update)
    return update["message"]["message_id"]


def react(telegram, message_id: int, old=(), new=("👍",)):
    return telegram.updates.reaction(CHAT, message_id, FAN, old=list(old), new=list(new))


async def test_a_reaction_while_the_gateway_is_down_is_flattred_once_it_is_back(
        telegram, proxy, engine):
    await telegram.start(FAN)
    message_id = await posted(telegram)
    proxy.down = True
    await telegram.feed(react(telegram, message_id))
    assert telegram.said_to(FAN)[-1] == (
        "Flattr can't be reached right now. I'll flattr that post in Readers as soon as it "
        "is back.")
    assert await count(engine) == 0 and len(telegram.services.pending) == 1
    assert not await telegram.services.pending.run_once()  # still down: still owed
    proxy.down = False
    assert await telegram.services.pending.run_once()
    assert await count(engine) == 1 and len(telegram.services.pending) == 0
    keys = {s.headers["Idempotency-Key"] for s in proxy.requests("/api/v1/flattrs")}
    assert len(keys) == 1  # every try of this flattr, then and now, carried the same key
    assert telegram.api.sent_to(CHAT["id"]) == []


async def test_answers_lost_after_the_flattr_was_made_leave_one_flattr(telegram, proxy,
                                                                       engine):
    await telegram.start(FAN)
    message_id = await posted(telegram)
    proxy.lose_next(1, FLATTRS)  # made, the answer lost: the retry is answered from the key
    await telegram.feed(react(telegram, message_id))
    assert await count(engine) == 1 and len(telegram.services.pending) == 0
    proxy.lose_next(4, FLATTRS)  # every try of the next one lost: owed, then replayed
    other = await posted(telegram)
    await telegram.feed(react(telegram, other))
    assert await count(engine) == 2 and len(telegram.services.pending) == 1
    assert await telegram.services.pending.run_once()
    assert await count(engine) == 2
    outcomes = [s.outcome for s in proxy.requests("/api/v1/flattrs")]
    assert outcomes == ["lost", "forwarded"] + ["lost"] * 4 + ["forwarded"]


async def test_a_reaction_taken_away_while_the_gateway_is_down_ends_with_no_flattr(
        telegram, proxy, engine):
    await telegram.start(FAN)
    message_id = await posted(telegram)
    proxy.down = True
    await telegram.feed(react(telegram, message_id),
                        react(telegram, message_id, old=["👍"], new=[]))
    assert len(telegram.services.pending) == 1  # the take-back replaced the flattr
    proxy.down = False
    assert await telegram.services.pending.run_once()
    assert await count(engine) == 0
    # Made and then taken back while down: the take-back undoes what landed.
    await telegram.feed(react(telegram, message_id))
    assert await count(engine) == 1
    proxy.down = True
    await telegram.feed(react(telegram, message_id, old=["👍"], new=[]))
    proxy.down = False
    assert await telegram.services.pending.run_once()
    assert await count(engine) == 0


async def test_a_command_while_the_gateway_is_down_gets_a_clear_private_answer(telegram,
                                                                              proxy, engine):
    await telegram.start(FAN)
    proxy.down = True
    await telegram.feed(telegram.updates.command(FAN, "/flattr https://example.com/"),
                        telegram.updates.command(FAN, "/balance", chat=CHAT))
    assert telegram.said_to(FAN)[-2:] == [
        "Flattr can't be reached right now. Try again in a minute."] * 2
    assert telegram.api.sent_to(CHAT["id"]) == []
    proxy.down = False
    assert await count(engine) == 0


async def test_a_take_back_after_an_owed_flattr_wins_once_the_gateway_is_back(
        telegram, proxy, engine):
    await telegram.start(FAN)
    message_id = await posted(telegram)
    proxy.down = True
    await telegram.feed(react(telegram, message_id))  # the flattr is owed
    proxy.down = False
    await telegram.feed(react(telegram, message_id, old=["👍"], new=[]))
    assert len(telegram.services.pending) == 0  # the take-back answered: the flattr forgotten
    assert await telegram.services.pending.run_once()
    assert await count(engine) == 0


async def test_a_reaction_after_an_owed_take_back_stays(telegram, proxy, engine):
    await telegram.start(FAN)
    message_id = await posted(telegram)
    await telegram.feed(react(telegram, message_id))
    proxy.down = True
    await telegram.feed(react(telegram, message_id, old=["👍"], new=[]))  # owed take-back
    proxy.down = False
    await telegram.feed(react(telegram, message_id))
    assert await count(engine) == 1 and len(telegram.services.pending) == 0
    assert await telegram.services.pending.run_once()
    assert await count(engine) == 1


async def test_unflattr_after_an_owed_flattr_wins(telegram, proxy, engine):
    await telegram.start(FAN)
    update = telegram.updates.message(CHAT, {"id": AUTHOR, "is_bot": False,
                                             "first_name": "A"}, "a post")
    await telegram.feed(update)
    message_id = update["message"]["message_id"]
    proxy.down = True
    await telegram.feed(react(telegram, message_id))  # the flattr is owed
    proxy.down = False
    await telegram.feed(telegram.updates.command(FAN, "/unflattr", chat=CHAT,
                                                 reply_to=update["message"]))
    assert len(telegram.services.pending) == 0
    assert await telegram.services.pending.run_once()
    assert await count(engine) == 0
