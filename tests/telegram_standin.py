"""A stand-in for Telegram's Bot API on loopback, for the bot's tests and its benchmark.

It speaks the wire format PTB speaks: POST /bot<TOKEN>/<method>, parameters form-encoded
with each value JSON-encoded (strings as they are), answers `{"ok": true, "result": …}` or
`{"ok": false, "error_code", "description", "parameters"}`. It records every call, serves
`getUpdates` from a queue (long-polling), and fails on demand: a 429 with
`parameters.retry_after`, a 403 for users who blocked the bot.

The `Updates` helper writes the update JSON Telegram sends for messages, commands,
reactions, channel posts and button presses.
"""

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from loopback import LoopbackServer

BOT_ID = 5550001
BOT_TOKEN = f"{BOT_ID}:AAF-test-token-for-the-stand-in"
BOT_USERNAME = "flattr_test_bot"
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Flattr", "username": BOT_USERNAME}
ADMIN_RIGHTS = dict.fromkeys((
    "can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
    "can_manage_video_chats", "can_restrict_members", "can_promote_members",
    "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
    "can_delete_stories"), False) | {"can_manage_chat": True, "can_edit_messages": True,
                                     "can_post_messages": True}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 0  # the answer's HTTP status, once answered


def _decode(value: str) -> Any:
    """Each form value is JSON, except strings, which are sent as they are."""
    try:
        return json.loads(value)
    except ValueError:
        return value


@dataclass
class BotApiStandIn(LoopbackServer):
    token: str = BOT_TOKEN
    calls: list[Call] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)  # chats that answer 403
    members: dict[tuple[int, int], str] = field(default_factory=dict)  # (chat, user) → status
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)  # for getChat
    answer_delay_seconds: float = 0.0
    _limits: list[tuple[str, float]] = field(default_factory=list)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _arrived: asyncio.Condition | None = None
    _message_ids: itertools.count = field(default_factory=lambda: itertools.count(9000))

    # --- set-up --------------------------------------------------------------------------

    async def start(self) -> "BotApiStandIn":
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._arrived = asyncio.Condition()
        await self.serve(app)  # `root` is what FLATTR_TELEGRAM_BASE_URL names
        return self

    def limit_next(self, method: str, retry_after: float, count: int = 1) -> None:
        """The next `count` calls of `method` get a 429 asking to wait `retry_after` s."""
        self._limits.extend([(method, retry_after)] * count)

    def add_channel(self, chat_id: int, username: str, title: str) -> None:
        self.chats[chat_id] = {"id": chat_id, "type": "channel", "title": title,
                               "username": username}

    async def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for a polling bot (getUpdates)."""
        assert self._arrived is not None
        async with self._arrived:
            self._updates.extend(updates)
            self._arrived.notify_all()

    # --- what the bot did ----------------------------------------------------------------

    def called(self, method: str, *, answered: int | None = None,
               **matching: Any) -> list[dict[str, Any]]:
        """The parameters of each call of `method` (only those answered `answered`)."""
        return [c.params for c in self.calls if c.method == method
                and (answered is None or c.status == answered)
                and all(c.params.get(k) == v for k, v in matching.items())]

    def sent_to(self, chat_id: int) -> list[str]:
        """The texts Telegram took for this chat (refused sends left out)."""
        return [p["text"] for p in self.called("sendMessage", answered=200, chat_id=chat_id)]

    async def wait_for(self, method: str, count: int = 1, seconds: float = 5.0,
                       **matching: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while len(found := self.called(method, **matching)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {matching} called {len(found)} times, not "
                                     f"{count}; calls: {[c.method for c in self.calls]}")
            await asyncio.sleep(0.02)
        return found

    # --- the API -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        form = await request.post()
        params = {name: _decode(value) for name, value in form.items()
                  if isinstance(value, str)}
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        if self.answer_delay_seconds and method != "getUpdates":
            await asyncio.sleep(self.answer_delay_seconds)
        response = await self._answer(method, params)
        call.status = response.status
        return response

    async def _answer(self, method: str, params: dict[str, Any]) -> web.Response:
        for n, (limited, retry_after) in enumerate(self._limits):
            if limited == method:
                del self._limits[n]
                return _error(429, f"Too Many Requests: retry after {retry_after:g}",
                              {"retry_after": retry_after})
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return _error(404, f"Not Found: method {method} is not in the stand-in")
        return await handler(params)

    async def _getMe(self, _params: dict) -> web.Response:
        return _ok(BOT_USER | {"can_join_groups": True, "can_read_all_group_messages": False,
                               "supports_inline_queries": False})

    async def _getUpdates(self, params: dict) -> web.Response:
        assert self._arrived is not None
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), 1.0)
        if offset:  # as Telegram: an offset confirms, and forgets, every update before it
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def due() -> list[dict[str, Any]]:
            return [u for u in self._updates if u["update_id"] >= offset]

        async with self._arrived:
            if not due() and wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait_for(lambda: bool(due())), wait)
            found = due()[:int(params.get("limit") or 100)]
        return _ok(found)

    async def _ok_true(self, _params: dict) -> web.Response:
        return _ok(True)

    _deleteWebhook = _setWebhook = _setMyCommands = _answerCallbackQuery = _ok_true
    _deleteMessage = _ok_true

    async def _sendMessage(self, params: dict) -> web.Response:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        return _ok({"message_id": next(self._message_ids), "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                    "from": BOT_USER, "text": str(params.get("text", ""))})

    async def _editMessageReplyMarkup(self, params: dict) -> web.Response:
        chat_id = int(params["chat_id"])
        return _ok({"message_id": int(params["message_id"]), "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "channel", "title": "A channel"},
                    "reply_markup": params.get("reply_markup")})

    async def _getChatMember(self, params: dict) -> web.Response:
        chat_id, user_id = _chat_id(params["chat_id"], self.chats), int(params["user_id"])
        status = self.members.get((chat_id, user_id), "member")
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        if status == "administrator":
            return _ok({"status": status, "user": user, **ADMIN_RIGHTS})
        if status == "creator":
            return _ok({"status": status, "user": user, "is_anonymous": False})
        return _ok({"status": status, "user": user})

    async def _getChat(self, params: dict) -> web.Response:
        chat_id = _chat_id(params["chat_id"], self.chats)
        if chat_id not in self.chats:
            return _error(400, "Bad Request: chat not found")
        return _ok(self.chats[chat_id] | {
            "accent_color_id": 0, "max_reaction_count": 11,
            "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                    "unique_gifts": False, "premium_subscription": False,
                                    "gifts_from_channels": False}})


def _chat_id(value: Any, chats: dict[int, dict[str, Any]]) -> int:
    if isinstance(value, str) and value.startswith("@"):
        for chat_id, chat in chats.items():
            if chat.get("username", "").lower() == value[1:].lower():
                return chat_id
        return 0
    return int(value)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


# --- the updates Telegram sends -----------------------------------------------------------

def user(user_id: int, name: str = "", *, bot: bool = False) -> dict[str, Any]:
    return {"id": user_id, "is_bot": bot, "first_name": name or f"User{user_id}"}


def group(chat_id: int = -1001234567890, title: str = "Readers") -> dict[str, Any]:
    return {"id": chat_id, "type": "supergroup", "title": title}


def private(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": f"User{user_id}"}


def channel(chat_id: int = -1009876543210, title: str = "News",
            username: str = "flattr_news") -> dict[str, Any]:
    return {"id": chat_id, "type": "channel", "title": title, "username": username}


class Updates:
    """Update JSON as Telegram sends it, with increasing update_ids and message_ids."""

    def __init__(self, first_update_id: int = 1000) -> None:
        self._update_ids = itertools.count(first_update_id)
        self._message_ids = itertools.count(100)

    def _update(self, **body: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), **body}

    def message(self, chat: dict, sender: dict | None, text: str, *,
                reply_to: dict | None = None, sender_chat: dict | None = None,
                message_id: int | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"message_id": message_id or next(self._message_ids),
                                   "date": int(time.time()), "chat": chat, "text": text}
        if sender is not None:
            message["from"] = sender
        if sender_chat is not None:
            message["sender_chat"] = sender_chat
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(command)}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return self._update(message=message)

    def command(self, user_id: int, text: str, *, chat: dict | None = None,
                reply_to: dict | None = None) -> dict[str, Any]:
        """A command from a user, in their private chat unless `chat` says otherwise."""
        return self.message(chat or private(user_id), user(user_id), text, reply_to=reply_to)

    def reaction(self, chat: dict, message_id: int, user_id: int, *, old: list[str] = (),
                 new: list[str] = ()) -> dict[str, Any]:
        return self._update(message_reaction={
            "chat": chat, "message_id": message_id, "user": user(user_id),
            "date": int(time.time()),
            "old_reaction": [{"type": "emoji", "emoji": e} for e in old],
            "new_reaction": [{"type": "emoji", "emoji": e} for e in new]})

    def channel_post(self, chat: dict, text: str = "A post") -> dict[str, Any]:
        return self._update(channel_post={
            "message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
            "sender_chat": chat, "text": text})

    def press(self, chat: dict, message_id: int, user_id: int,
              data: str = "flattr") -> dict[str, Any]:
        return self._update(callback_query={
            "id": f"cq{next(self._update_ids)}", "from": user(user_id),
            "chat_instance": "42", "data": data,
            "message": {"message_id": message_id, "date": int(time.time()), "chat": chat,
                        "sender_chat": chat, "text": "A post"}})
