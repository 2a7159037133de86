"""The live count on a channel post's Flattr button: edited at most once every few seconds
a post, however many press it meanwhile; the count is the gateway's."""

import asyncio
import logging
import time

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError

from bots.client import GatewayClient, GatewayError

log = logging.getLogger("flattr.bots.telegram")
FLATTR_DATA = "flattr"
MAX_TRACKED = 10_000


def button(count: int = 0) -> InlineKeyboardMarkup:
    label = f"Flattr · {count}" if count else "Flattr"
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=FLATTR_DATA)]])


class CountEditor:
    def __init__(self, gateway: GatewayClient, interval_seconds: float) -> None:
        self.gateway = gateway
        self.interval_seconds = interval_seconds
        self._last_edit: dict[tuple[int, int], float] = {}
        self._scheduled: dict[tuple[int, int], asyncio.Task] = {}
        self._editing: dict[tuple[int, int], asyncio.Task] = {}
        self.edits = 0

    def schedule(self, bot: Bot, chat_id: int, message_id: int) -> None:
        """Show the post's count soon: at once if its last edit is old enough."""
        post = (chat_id, message_id)
        if post in self._scheduled:
            return  # the edit already waiting will read the count then
        self._scheduled[post] = asyncio.create_task(self._edit(bot, post))

    async def _edit(self, bot: Bot, post: tuple[int, int]) -> None:
        try:
            while True:  # after the post's edit under way, if any, and the interval since
                editing = self._editing.get(post)
                if editing is not None:
                    await asyncio.wait({editing})
                    continue
                wait = (self._last_edit.get(post, float("-inf")) + self.interval_seconds
                        - time.monotonic())
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._editing[post] = asyncio.current_task()
            self._edited(post)  # from when it starts: a press meanwhile waits its turn
        finally:
            del self._scheduled[post]  # a press from now on schedules the next edit
        try:
            count = await self.gateway.thing(f"telegram:{post[0]}/{post[1]}")
            self._edited(post)  # and from when Telegram is asked
            await bot.edit_message_reply_markup(post[0], post[1],
                                                reply_markup=button(count.count_total))
            self.edits += 1
        except (GatewayError, TelegramError) as error:
            log.info("count of %s not shown: %s", post, error)
        finally:
            self._editing.pop(post, None)

    def _edited(self, post: tuple[int, int]) -> None:
        if len(self._last_edit) >= MAX_TRACKED:
            self._last_edit.clear()
        self._last_edit[post] = time.monotonic()

    async def close(self) -> None:
        waiting = list(self._scheduled.values()) + list(self._editing.values())
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
