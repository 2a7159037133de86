"""What the chat bots call with their service token (scope `bot`)."""

import secrets
from collections.abc import Iterator

from sqlalchemy.exc import IntegrityError

from core import chats, link_codes, members
from core.errors import HandleTaken, InsufficientScope, InvalidChat, NotFound
from core.periods import Period
from core.things import waiting_for_author
from gateway.api import Api, Call
from gateway.handlers.members import member_json
from gateway.present import when
from gateway.schemas import BotLink, BotMember, ChatSettingsBody, WaitingQuery

api = Api()
MAX_HANDLE_LENGTH = 32
SUFFIX_BYTES = 4
RANDOM_TRIES = 5


def only_the_bot_itself(call: Call) -> None:
    if call.principal.acting_for:
        raise InsufficientScope("this route is for the bot itself, without Flattr-Identity")


@api.route("POST", "/bot/link", summary="Redeem a link code for a chat identity", scope="bot",
           body=BotLink, errors=("invalid_code", "invalid_identity", "identity_taken"))
async def link(call: Call):
    only_the_bot_itself(call)
    member_id, identity_id = await link_codes.redeem_link_code(
        call.conn, call.body.code, call.body.identity
    )
    member = await members.member_by_id(call.conn, member_id)
    return {"member": member_json(member), "identity": {"id": identity_id,
                                                         "identity": call.body.identity}}


def _handles_for(identity: str) -> Iterator[str]:
    """`te123` for telegram:123, then the same with a random suffix: anyone may take the
    handles a rule would pick next, no one can take those a random draw picks."""
    network, number = identity.split(":")
    base = f"{network[:2]}{number}"[:MAX_HANDLE_LENGTH - len("_") - 2 * SUFFIX_BYTES]
    yield base
    for _ in range(RANDOM_TRIES):
        yield f"{base}_{secrets.token_hex(SUFFIX_BYTES)}"


@api.route("POST", "/bot/members", summary="Create a member for a chat user (or find theirs)",
           scope="bot", body=BotMember, status=201,
           errors=("invalid_identity", "handle_taken"))
async def create_for_identity(call: Call):
    only_the_bot_itself(call)
    identity = members.parse_identity(call.body.identity)
    try:
        existing = await members.member_by_identity(call.conn, identity)
        return 200, {"created": False, "member": member_json(existing)}
    except NotFound:
        pass
    for handle in _handles_for(identity):
        try:
            async with call.conn.begin_nested():
                made = await members.create_member(call.conn, handle)
            break
        except (HandleTaken, IntegrityError):
            continue
    else:  # 2**32 suffixes a try: only bad luck many times over ends here
        raise HandleTaken(f"no free handle for {identity}: try again")
    await members.link_identity(call.conn, made.id, identity)
    return 201, {"created": True, "member": member_json(made)}


CHAT_SETTINGS = """\
`chat` is `telegram:<chat id>` (negative for groups and channels) or `discord:<server id>`.
A chat never set has the defaults, with `updated_at` null: `emoji` null (the bot's own),
`owner` null, `channels` [] (every channel). `owner` is the chat identity of whoever claimed
the chat (a Telegram channel): the bot sends it as the `author` of the chat's posts."""


def _chat_json(found: chats.ChatSettings) -> dict:
    return {"chat": found.chat, "emoji": found.emoji, "owner": found.owner,
            "channels": list(found.channels), "updated_at": when(found.updated_at)}


@api.route("GET", "/bot/chats/{chat}", summary="A chat's settings for the bots", scope="bot",
           errors=("invalid_chat",), description=CHAT_SETTINGS)
async def chat_settings(call: Call):
    only_the_bot_itself(call)
    return _chat_json(await chats.settings_of(call.conn, call.request.match_info["chat"]))


@api.route("PUT", "/bot/chats/{chat}", summary="Change a chat's settings (what is left out "
           "stays)", scope="bot", body=ChatSettingsBody, errors=("invalid_chat",
                                                                 "invalid_identity"),
           description=CHAT_SETTINGS)
async def change_chat_settings(call: Call):
    only_the_bot_itself(call)
    chat = chats.parse_chat(call.request.match_info["chat"])
    body: ChatSettingsBody = call.body
    if body.chat is not None and body.chat != chat:
        raise InvalidChat(f"the body names {body.chat[:40]!r}, the path {chat}")
    return _chat_json(await chats.change_settings(call.conn, chat, body.changes()))


@api.route("GET", "/bot/waiting", summary="What waits this month for an unlinked author",
           scope="bot", query=WaitingQuery, errors=("invalid_identity",),
           description="The posts of `identity` without an owner that were flattred this "
                       "month (`things`) and their flattrs this month (`flattrs`), held until "
                       "the author links the identity to a member. A linked identity: "
                       "`linked` true and both 0.")
async def waiting(call: Call):
    only_the_bot_itself(call)
    found = await waiting_for_author(call.conn, call.query.identity, Period.current())
    return {"identity": found.identity, "period": str(found.period), "linked": found.linked,
            "things": found.things, "flattrs": found.flattrs}
