"""Updates handled concurrently, yet in order where order matters.

Telegram hands updates over in order, and many at a time. The bot handles them at once,
except that an update waits for the earlier ones it depends on:
- everything of one user, one after the other (their /start before their first reaction,
  a reaction added before the same reaction taken away);
- a post before the reactions and button presses on it (the bot must have seen who wrote
  it), while the reactions of different users to one post run side by side.
An update's place is taken synchronously when it starts, before anything is awaited, so
the order is the order of arrival; each update waits only for earlier ones, so nothing
waits in a circle.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


class KeyOrder:
    """Per key: the last exclusive holder, and the shared holders that came after it."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[asyncio.Future | None, list[asyncio.Future]]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    @contextlib.asynccontextmanager
    async def hold(self, exclusive: tuple[str, ...] = (),
                   shared: tuple[str, ...] = ()) -> AsyncIterator[None]:
        mine = asyncio.get_running_loop().create_future()
        earlier: list[asyncio.Future] = []
        for key in exclusive:
            writer, readers = self._keys.get(key, (None, []))
            earlier.extend(([writer] if writer else []) + readers)
            self._keys[key] = (mine, [])
        for key in shared:
            writer, readers = self._keys.get(key, (None, []))
            earlier.extend([writer] if writer else [])
            self._keys[key] = (writer, [*readers, mine])
        try:
            pending = [f for f in earlier if not f.done()]
            if pending:
                await asyncio.wait(pending)  # never cancels what it waits for
            yield
        finally:
            mine.set_result(None)
            for key in (*exclusive, *shared):
                self._forget(key, mine)

    def _forget(self, key: str, done: asyncio.Future) -> None:
        writer, readers = self._keys.get(key, (None, []))
        readers = [r for r in readers if r is not done]
        if (writer is None or writer.done()) and not readers:
            self._keys.pop(key, None)
        else:
            self._keys[key] = (writer, readers)


def keys_of(update: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(exclusive, shared) keys of an update."""
    if not isinstance(update, Update):
        return (), ()
    user = update.effective_user
    mine = (f"user:{user.id}",) if user is not None else ()
    if update.message_reaction is not None:
        change = update.message_reaction
        return mine, (f"post:{change.chat.id}/{change.message_id}",)
    if update.callback_query is not None:
        message = update.callback_query.message
        post = (f"post:{message.chat.id}/{message.message_id}",) if message else ()
        return mine, post
    message = update.effective_message
    if message is not None:
        return (*mine, f"post:{message.chat.id}/{message.message_id}"), ()
    return mine, ()


class InOrderProcessor(BaseUpdateProcessor):
    """PTB's concurrent updates (at most `max_concurrent_updates`), in order by key."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self.order = KeyOrder()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        exclusive, shared = keys_of(update)
        async with self.order.hold(exclusive, shared):
            await coroutine

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
