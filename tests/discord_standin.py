"""A stand-in for Discord's REST API and websocket gateway on loopback, for the bot's tests.

REST under `{root}/api/v10` (what FLATTR_DISCORD_API_URL names): the bot's login
(`/users/@me`, `/oauth2/applications/@me`), the command sync, interaction callbacks and
follow-ups, DMs (`/users/@me/channels`, `/channels/{id}/messages`), users and messages. Every
call is recorded. It fails on demand: a 429 with `retry_after` (and the `Via` header, as
Discord's own 429s carry, else discord.py takes it for a Cloudflare ban), a 403 with code
50007 for users whose DMs are closed.

The websocket at `{root}/gateway` (FLATTR_DISCORD_GATEWAY_URL) speaks the gateway's JSON
protocol without compression: HELLO, IDENTIFY → READY and a GUILD_CREATE per guild,
HEARTBEAT → HEARTBEAT_ACK, dispatches with increasing sequence numbers, RECONNECT, and
RESUME → the dispatches the client missed, then RESUMED. `Events` writes the payloads Discord
sends: reactions (`message_author_id`, `type`, `burst`, `member` on additions in a server)
and interactions (slash commands, a message context menu).
"""

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from loopback import LoopbackServer

API = "/api/v10"
APPLICATION_ID = 7770000000000001
BOT_ID = 7770000000000002
BOT_TOKEN = "Nzc3.stand-in.bot-token"
EPOCH = "2026-01-01T00:00:00.000000+00:00"
MANAGE_GUILD = 1 << 5
EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 6)  # view, send, history, react


def user(user_id: int, name: str = "", *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name or f"user{user_id}", "discriminator": "0",
            "global_name": None, "avatar": None, "bot": bot, "public_flags": 0}


BOT_USER = user(BOT_ID, "flattr", bot=True) | {"verified": True, "mfa_enabled": False,
                                               "flags": 0}


def member(user_id: int, *, bot: bool = False, permissions: int = EVERYONE_PERMISSIONS
           ) -> dict[str, Any]:
    return {"user": user(user_id, bot=bot), "roles": [], "joined_at": EPOCH, "deaf": False,
            "mute": False, "flags": 0, "pending": False, "nick": None, "avatar": None,
            "premium_since": None, "communication_disabled_until": None,
            "permissions": str(permissions)}


def text_channel(channel_id: int, guild_id: int, name: str = "general") -> dict[str, Any]:
    return {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": name,
            "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None,
            "topic": None, "last_message_id": None, "rate_limit_per_user": 0}


def custom_emoji(emoji_id: int, name: str) -> dict[str, Any]:
    return {"id": str(emoji_id), "name": name, "roles": [], "require_colons": True,
            "managed": False, "animated": False, "available": True}


def guild(guild_id: int, channel_ids: tuple[int, ...], name: str = "Readers",
          emojis: dict[int, str] | None = None) -> dict[str, Any]:
    """A GUILD_CREATE's guild: its channels, its own emoji (id → name), one role, and the
    bot as its only member."""
    return {"id": str(guild_id), "name": name, "icon": None, "splash": None,
            "discovery_splash": None, "owner_id": "1", "afk_channel_id": None,
            "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "features": [], "mfa_level": 0, "system_channel_id": None,
            "system_channel_flags": 0, "rules_channel_id": None, "vanity_url_code": None,
            "description": None, "banner": None, "premium_tier": 0, "preferred_locale": "en-US",
            "public_updates_channel_id": None, "nsfw_level": 0, "premium_progress_bar_enabled":
            False, "unavailable": False, "large": False, "member_count": 3, "joined_at": EPOCH,
            "roles": [{"id": str(guild_id), "name": "@everyone", "color": 0, "hoist": False,
                       "position": 0, "permissions": str(EVERYONE_PERMISSIONS),
                       "managed": False, "mentionable": False, "flags": 0}],
            "emojis": [custom_emoji(i, n) for i, n in (emojis or {}).items()], "stickers": [],
            "members": [member(BOT_ID, bot=True)],
            "channels": [text_channel(c, guild_id, f"channel{c}") for c in channel_ids],
            "threads": [], "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": []}


def message(message_id: int, channel_id: int, author: dict[str, Any], content: str = "",
            guild_id: int | None = None) -> dict[str, Any]:
    made = {"id": str(message_id), "channel_id": str(channel_id), "author": author,
            "content": content, "timestamp": EPOCH, "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
            "embeds": [], "pinned": False, "type": 0, "flags": 0, "components": []}
    if guild_id is not None:
        made["guild_id"] = str(guild_id)
    return made


@dataclass
class Call:
    method: str
    path: str  # under /api/v10
    query: dict[str, str]
    body: Any
    status: int
    at: float


@dataclass
class Session:
    id: str
    events: list[dict[str, Any]] = field(default_factory=list)  # every dispatch, seq order


@dataclass
class DiscordStandIn(LoopbackServer):
    heartbeat_ms: int = 45_000
    guilds: dict[int, tuple[int, ...]] = field(default_factory=dict)  # guild → channels
    emojis: dict[int, dict[int, str]] = field(default_factory=dict)  # guild → its emoji
    users: dict[int, dict[str, Any]] = field(default_factory=dict)  # for GET /users/{id}
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)  # for GET …/messages/{id}
    dms_closed: set[int] = field(default_factory=set)  # users whose DMs answer 403 50007
    calls: list[Call] = field(default_factory=list)
    identifies: list[dict[str, Any]] = field(default_factory=list)
    resumes: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: int = 0
    session: Session | None = None
    _limits: list[tuple[str, float]] = field(default_factory=list)
    _delays: list[tuple[str, float]] = field(default_factory=list)
    _socket: web.WebSocketResponse | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(9_000_000_000))
    _sessions: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> "DiscordStandIn":
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        await self.serve(app)
        return self

    @property
    def api_url(self) -> str:
        return self.root + API

    @property
    def gateway_url(self) -> str:
        return self.root.replace("http://", "ws://") + "/gateway"

    def add_guild(self, guild_id: int, *channel_ids: int,
                  emojis: dict[int, str] | None = None) -> None:
        self.guilds[guild_id] = channel_ids
        self.emojis[guild_id] = emojis or {}

    def add_user(self, user_id: int, *, bot: bool = False) -> None:
        self.users[user_id] = user(user_id, bot=bot)

    def limit_next(self, path_start: str, retry_after: float, count: int = 1) -> None:
        """The next `count` calls whose path starts with `path_start` get a 429."""
        self._limits.extend([(path_start, retry_after)] * count)

    def delay_next(self, path_start: str, seconds: float) -> None:
        """The next call whose path starts with `path_start` is answered `seconds` late."""
        self._delays.append((path_start, seconds))

    # --- what the bot did ----------------------------------------------------------------

    def called(self, method: str, path_start: str, *, status: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.startswith(path_start)
                and (status is None or c.status == status)]

    def answers(self) -> list[dict[str, Any]]:
        """Every interaction answer, in order: the callbacks' and follow-ups' `data`, each with
        `type` (4: a message, 5: deferred) and `content`/`flags` when it has them."""
        found = []
        for c in self.calls:
            if c.method == "POST" and c.path.startswith("/interactions/"):
                found.append({"type": c.body["type"], **(c.body.get("data") or {})})
            elif c.method == "POST" and c.path.startswith(f"/webhooks/{APPLICATION_ID}/"):
                found.append({"type": 4, **c.body})
        return found

    def dm_channel(self, user_id: int) -> int:
        return user_id + 1  # the DM channel of a user, as the stand-in makes them

    def dms(self, user_id: int) -> list[dict[str, Any]]:
        """The DMs Discord took for this user (refused ones left out): their bodies."""
        return [c.body for c in self.called("POST", f"/channels/{self.dm_channel(user_id)}/"
                                                    "messages", status=200)]

    async def wait_for(self, method: str, path_start: str, count: int = 1,
                       seconds: float = 5.0) -> list[Call]:
        deadline = time.monotonic() + seconds
        while len(found := self.called(method, path_start)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path_start} called {len(found)} times, not "
                                     f"{count}: {[(c.method, c.path) for c in self.calls]}")
            await asyncio.sleep(0.01)
        return found

    async def wait_answers(self, count: int, seconds: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while len(found := self.answers()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} interaction answers, not {count}: {found}")
            await asyncio.sleep(0.01)
        return found

    # --- the websocket gateway -------------------------------------------------------------

    async def connected(self, seconds: float = 10.0) -> None:
        """Until a client is identified or resumed on the socket."""
        await asyncio.wait_for(self._connected.wait(), seconds)

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a dispatch (or keep it for a RESUME while no client is connected); its seq."""
        assert self.session is not None, "no client identified yet"
        frame = {"op": 0, "t": event, "s": len(self.session.events) + 1, "d": data}
        self.session.events.append(frame)
        if self._socket is not None and not self._socket.closed:
            await self._socket.send_str(json.dumps(frame))
        return frame["s"]

    async def reconnect(self) -> None:
        """Op 7 RECONNECT: the client closes, connects again and resumes its session."""
        self._connected.clear()
        socket, self._socket = self._socket, None
        assert socket is not None
        await socket.send_str(json.dumps({"op": 7, "d": None}))

    async def drop(self) -> None:
        """Close the socket the way a network fault does (4000): the client resumes."""
        self._connected.clear()
        socket, self._socket = self._socket, None
        assert socket is not None
        await socket.close(code=4000, message=b"dropped")

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        """One connection. Dispatches go to it once it identified or resumed (`_socket`)."""
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        await socket.send_str(json.dumps({"op": 10, "s": None, "t": None,
                                          "d": {"heartbeat_interval": self.heartbeat_ms}}))
        async for frame in socket:
            if frame.type is not web.WSMsgType.TEXT:
                break
            data = json.loads(frame.data)
            if data["op"] == 1:
                self.heartbeats += 1
                await socket.send_str(json.dumps({"op": 11}))
            elif data["op"] == 2:
                await self._identify(socket, request, data["d"])
            elif data["op"] == 6:
                await self._resume(socket, data["d"])
        if self._socket is socket:  # the live client went away
            self._socket = None
            self._connected.clear()
        return socket

    async def _identify(self, socket: web.WebSocketResponse, request: web.Request,
                        data: dict[str, Any]) -> None:
        self.identifies.append(data)
        self.session = Session(f"session-{next(self._sessions)}")
        self._socket = socket
        await self.dispatch("READY", {
            "v": 10, "user": BOT_USER, "session_id": self.session.id,
            "resume_gateway_url": f"ws://{request.host}/gateway", "shard": [0, 1],
            "application": {"id": str(APPLICATION_ID), "flags": 0},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds]})
        for guild_id, channels in self.guilds.items():
            await self.dispatch("GUILD_CREATE", guild(guild_id, channels,
                                                      emojis=self.emojis.get(guild_id)))
        self._connected.set()

    async def _resume(self, socket: web.WebSocketResponse, data: dict[str, Any]) -> None:
        """The dispatches after the client's `seq`, those that come meanwhile too, then
        RESUMED; from then on the socket is live."""
        self.resumes.append(data)
        if self.session is None or data.get("session_id") != self.session.id:
            await socket.send_str(json.dumps({"op": 9, "d": False}))  # invalid session
            return
        sent = data.get("seq") or 0
        while sent < len(self.session.events):
            await socket.send_str(json.dumps(self.session.events[sent]))
            sent += 1
        self._socket = socket
        await self.dispatch("RESUMED", {})
        self._connected.set()

    # --- REST ----------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        raw = await request.read()
        body = json.loads(raw) if raw and request.content_type == "application/json" else None
        call = Call(request.method, path, dict(request.query), body, 0, time.monotonic())
        self.calls.append(call)
        for n, (start, seconds) in enumerate(self._delays):
            if path.startswith(start):
                del self._delays[n]
                await asyncio.sleep(seconds)
                break
        response = self._limited(path) or await self._answer(request, call)
        call.status = response.status
        return response

    def _limited(self, path: str) -> web.Response | None:
        for n, (start, retry_after) in enumerate(self._limits):
            if path.startswith(start):
                del self._limits[n]
                return _json(
                    {"message": "You are being rate limited.", "retry_after": retry_after,
                     "global": False}, status=429,
                    headers={"Via": "1.1 google", "Retry-After": str(int(retry_after) + 1)})
        return None

    async def _answer(self, request: web.Request, call: Call) -> web.Response:
        if request.headers.get("Authorization") != f"Bot {BOT_TOKEN}" and not (
                call.path.startswith(("/interactions/", "/webhooks/"))):
            return _error(401, 0, "401: Unauthorized")
        parts = call.path.strip("/").split("/")
        method = call.method
        if method == "GET" and call.path == "/users/@me":
            return _json(BOT_USER)
        if method == "GET" and call.path == "/oauth2/applications/@me":
            return _json(_application())
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            return _json([{"description": "", **c, "id": str(next(self._ids)),
                           "application_id": str(APPLICATION_ID), "version": "1"}
                          for c in call.body])
        if method == "POST" and parts[0] == "interactions":
            return _json({"interaction": {
                "id": parts[1], "type": 2, "response_message_id": str(next(self._ids)),
                "response_message_loading": call.body["type"] == 5,
                "response_message_ephemeral": bool((call.body.get("data") or {}).get("flags"))}})
        if parts[0] == "webhooks":  # follow-ups and edits of the original answer
            return _json(message(next(self._ids), 1, BOT_USER,
                                              (call.body or {}).get("content") or ""))
        if method == "POST" and call.path == "/users/@me/channels":
            recipient = int(call.body["recipient_id"])
            return _json({"id": str(self.dm_channel(recipient)), "type": 1,
                                      "last_message_id": None, "flags": 0,
                                      "recipients": [user(recipient)]})
        if method == "POST" and parts[0] == "channels" and parts[-1] == "messages":
            channel_id = int(parts[1])
            if channel_id - 1 in self.dms_closed:
                return _error(403, 50007, "Cannot send messages to this user")
            return _json(message(next(self._ids), channel_id, BOT_USER,
                                              call.body.get("content") or ""))
        if method == "GET" and parts[0] == "channels" and len(parts) == 4:
            found = self.messages.get(int(parts[3]))
            return _json(found) if found else _error(404, 10008, "Unknown Message")
        if method == "GET" and parts[0] == "users" and len(parts) == 2:
            found = self.users.get(int(parts[1]))
            return _json(found) if found else _error(404, 10013, "Unknown User")
        return _error(404, 0, f"404: Not Found ({method} {call.path} is not in the stand-in)")


def _application() -> dict[str, Any]:
    return {"id": str(APPLICATION_ID), "name": "Flattr", "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "owner": user(1, "owner"),
            "verify_key": "00", "flags": 0, "team": None, "summary": ""}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with the bare content type Discord sends (discord.py compares it exactly)."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


def _error(status: int, code: int, text: str) -> web.Response:
    return _json({"message": text, "code": code}, status=status)


# --- the events Discord sends -------------------------------------------------------------

class Events:
    """Dispatch payloads as Discord sends them, with increasing ids."""

    def __init__(self, guild_id: int) -> None:
        self.guild_id = guild_id
        self._ids = itertools.count(5_000_000_000)

    def next_id(self) -> int:
        return next(self._ids)

    def reaction_add(self, user_id: int, channel_id: int, message_id: int, author_id: int | None,
                     emoji: str = "💸", *, emoji_id: int | None = None, bot: bool = False,
                     burst: bool = False) -> dict[str, Any]:
        data = self._reaction(user_id, channel_id, message_id, emoji, emoji_id, burst)
        data["member"] = member(user_id, bot=bot)
        if author_id is not None:
            data["message_author_id"] = str(author_id)
        return data

    def reaction_remove(self, user_id: int, channel_id: int, message_id: int,
                        emoji: str = "💸", *, emoji_id: int | None = None,
                        burst: bool = False) -> dict[str, Any]:
        return self._reaction(user_id, channel_id, message_id, emoji, emoji_id, burst)

    def _reaction(self, user_id: int, channel_id: int, message_id: int, emoji: str,
                  emoji_id: int | None, burst: bool) -> dict[str, Any]:
        return {"user_id": str(user_id), "channel_id": str(channel_id),
                "message_id": str(message_id), "guild_id": str(self.guild_id),
                "emoji": {"id": str(emoji_id) if emoji_id else None, "name": emoji,
                          **({"animated": False} if emoji_id else {})},
                "burst": burst, "burst_colors": [], "type": 1 if burst else 0}

    def command(self, user_id: int, name: str, options: dict[str, Any] | None = None, *,
                channel_id: int = 0, permissions: int = EVERYONE_PERMISSIONS,
                in_dm: bool = False) -> dict[str, Any]:
        """A slash command (string options) in a server channel, or in the bot's DMs."""
        data = {"id": str(next(self._ids)), "name": name, "type": 1,
                "options": [{"name": k, "type": 3, "value": v}
                            for k, v in (options or {}).items()]}
        return self._interaction(user_id, data, channel_id, permissions, in_dm)

    def flattr_this_post(self, user_id: int, channel_id: int, message_id: int,
                         author: dict[str, Any]) -> dict[str, Any]:
        """The message context menu "Flattr this post" on a message by `author`."""
        target = message(message_id, channel_id, author, "a post", self.guild_id)
        data = {"id": str(next(self._ids)), "name": "Flattr this post", "type": 3,
                "target_id": str(message_id), "resolved": {"messages": {str(message_id): target}}}
        return self._interaction(user_id, data, channel_id, EVERYONE_PERMISSIONS, False)

    def _interaction(self, user_id: int, data: dict[str, Any], channel_id: int,
                     permissions: int, in_dm: bool) -> dict[str, Any]:
        interaction_id = next(self._ids)
        made: dict[str, Any] = {
            "id": str(interaction_id), "application_id": str(APPLICATION_ID), "type": 2,
            "token": f"interaction-token-{interaction_id}", "version": 1, "data": data,
            "locale": "en-US", "entitlements": [], "attachment_size_limit": 8_388_608,
            "app_permissions": str(EVERYONE_PERMISSIONS)}
        if in_dm:
            made |= {"user": user(user_id), "context": 1, "channel_id": str(user_id + 1),
                     "channel": {"id": str(user_id + 1), "type": 1, "last_message_id": None,
                                 "flags": 0, "recipients": [user(user_id)]},
                     "authorizing_integration_owners": {"0": str(user_id)}}
        else:
            made |= {"guild_id": str(self.guild_id), "guild_locale": "en-US", "context": 0,
                     "member": member(user_id, permissions=permissions),
                     "channel_id": str(channel_id),
                     "channel": text_channel(channel_id, self.guild_id),
                     "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
                     "authorizing_integration_owners": {"0": str(self.guild_id)}}
        return made
