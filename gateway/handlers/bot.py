"""What the chat bots call with their service token (scope `bot`)."""

from sqlalchemy.exc import IntegrityError

from core import link_codes, members
from core.errors import HandleTaken, InsufficientScope, NotFound
from gateway.api import Api, Call
from gateway.handlers.members import member_json
from gateway.schemas import BotLink, BotMember

api = Api()


def _only_the_bot_itself(call: Call) -> None:
    if call.principal.acting_for:
        raise InsufficientScope("this route is for the bot itself, without Flattr-Identity")


@api.route("POST", "/bot/link", summary="Redeem a link code for a chat identity", scope="bot",
           body=BotLink, errors=("invalid_code", "invalid_identity", "identity_taken"))
async def link(call: Call):
    _only_the_bot_itself(call)
    member_id, identity_id = await link_codes.redeem_link_code(
        call.conn, call.body.code, call.body.identity
    )
    member = await members.member_by_id(call.conn, member_id)
    return {"member": member_json(member), "identity": {"id": identity_id,
                                                         "identity": call.body.identity}}


@api.route("POST", "/bot/members", summary="Create a member for a chat user (or find theirs)",
           scope="bot", body=BotMember, status=201, errors=("invalid_identity",))
async def create_for_identity(call: Call):
    _only_the_bot_itself(call)
    identity = members.parse_identity(call.body.identity)
    try:
        existing = await members.member_by_identity(call.conn, identity)
        return 200, {"created": False, "member": member_json(existing)}
    except NotFound:
        pass
    network, number = identity.split(":")
    base = f"{network[:2]}{number}"[:28]
    for attempt in range(5):
        handle = base if attempt == 0 else f"{base}_{attempt}"
        try:
            async with call.conn.begin_nested():
                made = await members.create_member(call.conn, handle)
            break
        except (HandleTaken, IntegrityError):
            continue
    else:
        raise HandleTaken(f"no free handle for {identity}")
    await members.link_identity(call.conn, made.id, identity)
    return 201, {"created": True, "member": member_json(made)}
