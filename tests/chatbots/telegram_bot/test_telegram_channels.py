"""Channels: the Flattr button under new posts, its answers, its live count, and posts of a
claimed channel belonging to the claimer."""

import asyncio
import itertools

from chat_flattrs import flattred
from support import wait_until
from telegram_standin import channel

OWNER, FAN, OTHER, STRANGER = 111, 222, 333, 444
NEWS = channel()
KEY = f"telegram:{NEWS['id']}"


async def post(telegram) -> int:
    update = telegram.updates.channel_post(NEWS)
    await telegram.feed(update)
    return update["channel_post"]["message_id"]


def answers(telegram) -> list[tuple[str | None, str | None]]:
    return [(a.get("text"), a.get("url")) for a in telegram.api.called("answerCallbackQuery")]


async def test_a_new_post_gets_the_button_unless_it_has_buttons_of_its_own(telegram):
    message_id = await post(telegram)
    (edit,) = telegram.api.called("editMessageReplyMarkup")
    assert edit["chat_id"] == NEWS["id"] and edit["message_id"] == message_id
    assert edit["reply_markup"] == {"inline_keyboard": [[{"text": "Flattr",
                                                          "callback_data": "flattr"}]]}
    own = telegram.updates.channel_post(NEWS)
    own["channel_post"]["reply_markup"] = {"inline_keyboard": [[{"text": "Shop",
                                                                 "url": "https://x.example"}]]}
    await telegram.feed(own)
    assert len(telegram.api.called("editMessageReplyMarkup")) == 1


async def test_pressing_flattrs_and_answers_each_case(telegram, engine):
    await telegram.start(FAN)
    message_id = await post(telegram)
    await telegram.feed(telegram.updates.press(NEWS, message_id, FAN),
                        telegram.updates.press(NEWS, message_id, FAN),
                        telegram.updates.press(NEWS, message_id, STRANGER))
    assert answers(telegram) == [
        ("Flattred ✓", None), ("Already flattred this month", None),
        ("Link your Flattr account first", "https://t.me/flattr_test_bot?start=join")]
    # Nobody claimed the channel: the flattr is held for whoever will.
    assert await flattred(engine) == [("te222", f"{KEY}/{message_id}", None)]


async def test_a_claimed_channel_s_posts_are_the_claimer_s(telegram, engine, gateway):
    await telegram.start(OWNER)
    await telegram.start(FAN)
    await gateway.change_chat_settings(KEY, owner=f"telegram:{OWNER}")
    message_id = await post(telegram)
    await telegram.feed(telegram.updates.press(NEWS, message_id, FAN),
                        telegram.updates.press(NEWS, message_id, OWNER))
    assert answers(telegram) == [("Flattred ✓", None),
                                 ("This post is yours: you can't flattr it.", None)]
    assert await flattred(engine) == [("te222", f"{KEY}/{message_id}", "te111")]


async def test_the_live_count_is_edited_at_most_once_an_interval(telegram, engine):
    users = [FAN, OTHER, STRANGER, 555, 666]
    for user_id in users:
        await telegram.start(user_id)
    message_id = await post(telegram)
    for user_id in users:
        await telegram.feed(telegram.updates.press(NEWS, message_id, user_id))
        await asyncio.sleep(0.05)

    def edits() -> list:
        return [c for c in telegram.api.calls if c.method == "editMessageReplyMarkup"][1:]

    def label(call) -> str:
        return call.params["reply_markup"]["inline_keyboard"][0][0]["text"]

    async def shows_five() -> bool:
        return bool(edits()) and label(edits()[-1]) == "Flattr · 5"

    assert await wait_until(shows_five, 10)  # the interval is 0.3 s in the tests
    await asyncio.sleep(0.4)  # and no edit after that one
    made = edits()
    assert label(made[-1]) == "Flattr · 5"
    assert 1 <= len(made) < len(users)  # five presses, fewer edits
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(made)]
    assert all(gap >= 0.28 for gap in gaps), gaps
    assert len(await flattred(engine)) == 5


async def test_a_press_while_the_gateway_is_down_is_flattred_once_it_is_back(telegram, engine,
                                                                            proxy):
    await telegram.start(FAN)
    message_id = await post(telegram)
    proxy.down = True
    await telegram.feed(telegram.updates.press(NEWS, message_id, FAN))
    (alert,) = telegram.api.called("answerCallbackQuery")
    assert alert["show_alert"] is True and alert["text"].startswith("Flattr can't be reached")
    proxy.down = False
    assert await telegram.services.pending.run_once()
    assert await flattred(engine) == [("te222", f"{KEY}/{message_id}", None)]


async def test_a_press_once_the_gateway_is_back_settles_the_owed_one(telegram, engine, proxy):
    await telegram.start(FAN)
    message_id = await post(telegram)
    proxy.down = True
    await telegram.feed(telegram.updates.press(NEWS, message_id, FAN))  # owed
    proxy.down = False
    await telegram.feed(telegram.updates.press(NEWS, message_id, FAN))
    assert answers(telegram)[-1] == ("Flattred ✓", None)
    assert len(telegram.services.pending) == 0
    assert await flattred(engine) == [("te222", f"{KEY}/{message_id}", None)]


async def test_a_slow_count_does_not_let_a_second_edit_in_before_the_interval(telegram, engine,
                                                                             proxy):
    await telegram.start(FAN)
    await telegram.start(OTHER)
    message_id = await post(telegram)
    proxy.fail_next(1, path="/api/v1/things")  # the first count is slow: tried again 0.25 s on
    await telegram.feed(telegram.updates.press(NEWS, message_id, FAN))
    await asyncio.sleep(0.05)  # its edit has started, asking for the count
    await telegram.feed(telegram.updates.press(NEWS, message_id, OTHER))

    def edits() -> list:
        return [c for c in telegram.api.calls if c.method == "editMessageReplyMarkup"][1:]

    async def shows_two() -> bool:
        return bool(edits()) and edits()[-1].params["reply_markup"]["inline_keyboard"][0][0][
            "text"] == "Flattr · 2"

    assert await wait_until(shows_two, 10)
    await asyncio.sleep(0.4)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(edits())]
    assert all(gap >= 0.28 for gap in gaps), gaps  # the interval is 0.3 s in the tests
