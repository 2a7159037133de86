"""What the chat bots call with their service token (scope `bot`)."""

import secrets
from collections.abc import Iterator

from sqlalchemy.exc import IntegrityError

from core import link_codes, members
from core.errors import HandleTaken, InsufficientScope, NotFound
from gateway.api import Api, Call
from gateway.handlers.members import member_json
from gateway.schemas import BotLink, BotMember

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
