"""The web inbox: every message a member was sent, whichever channels reached them."""

from core import inbox
from gateway.api import Api, Call
from gateway.present import when
from gateway.schemas import MessagesQuery

api = Api()


def _message_json(message: dict) -> dict:
    return {**message, "created_at": when(message["created_at"])}


@api.route("GET", "/messages", summary="The member's messages, newest first", scope="read",
           query=MessagesQuery)
async def list_messages(call: Call):
    query: MessagesQuery = call.query
    page = await inbox.page_of(call.conn, call.member_id, limit=query.limit,
                               before=query.before, unread_only=query.unread)
    return {"messages": [_message_json(m) for m in page.messages], "unread": page.unread,
            "next": page.next}


@api.route("POST", "/messages/{id}/read", summary="Mark a message read", scope="read",
           errors=("not_found",))
async def read_one(call: Call):
    message = await inbox.mark_read(call.conn, call.member_id, call.path_id())
    return {"message": _message_json(message),
            "unread": await inbox.unread_count(call.conn, call.member_id)}


@api.route("POST", "/messages/read", summary="Mark every message read", scope="read")
async def read_all(call: Call):
    return {"marked": await inbox.mark_all_read(call.conn, call.member_id), "unread": 0}
