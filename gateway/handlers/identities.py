"""Linking chat identities: a one-time code made here, redeemed by a bot."""

from core import link_codes, members
from core.errors import InsufficientScope
from gateway.api import Api, Call
from gateway.present import when

api = Api()


@api.route("POST", "/link-codes", summary="A one-time code (10 minutes) to link a chat account",
           scope="account", status=201)
async def make_code(call: Call):
    code, expires_at = await link_codes.make_link_code(call.conn, call.member_id)
    return {"code": code, "expires_at": when(expires_at),
            "how_to_use": f"send /link {code} to the Flattr bot in Discord or Telegram"}


@api.route("GET", "/identities", summary="The member's linked chat identities", scope="read")
async def list_identities(call: Call):
    found = await members.identities_of(call.conn, call.member_id)
    return {"identities": [
        {"id": i["id"], "identity": i["identity"], "created_at": when(i["created_at"])}
        for i in found
    ]}


@api.route("DELETE", "/identities/{id}", summary="Unlink a chat identity", scope="account",
           errors=("not_found",), chat_user_may=True,
           description="A bot acting for a chat user (Flattr-Identity) may unlink that "
           "identity, and no other: the /unlink command of the chat bots.")
async def unlink(call: Call):
    acting_for = call.principal.acting_for
    if acting_for is not None:
        linked = await members.identity_id_of(call.conn, call.member_id, acting_for)
        if linked != call.path_id():
            raise InsufficientScope(f"a bot acting for {acting_for} may unlink only it")
    await members.unlink_identity(call.conn, call.member_id, call.path_id())
    return {"unlinked": call.path_id()}
