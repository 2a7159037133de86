"""The bots' side of the outbox (scope `bot`): lease messages, acknowledge or fail them."""

import asyncio
import contextlib

from core import outbox
from core.errors import NotFound
from core.notifications import CHAT_NETWORKS
from gateway import keys
from gateway.api import Api, Call
from gateway.handlers.bot import only_the_bot_itself
from gateway.present import when
from gateway.schemas import OutboxAckMany, OutboxFail, OutboxLease

api = Api()
# E-mail deliveries are the worker's: a bot neither leases nor answers for them.
CHAT_CHANNELS = CHAT_NETWORKS

DELIVERY = f"""\
Delivery is at least once. A leased message is the bot's until its lease ends; one that is
not acknowledged by then is handed out again. A failed try waits longer each time
(exponential back-off from {outbox.FIRST_BACKOFF.total_seconds():g} s, and never less than
`retry_after`); after {outbox.MAX_ATTEMPTS} tries a message is `dead` and listed for admins
(`GET /api/v1/admin/outbox?state=dead`), who may retry it. A member gets a message twice only
if a sender dies between the platform's answer and its acknowledgement: acknowledge as soon
as the platform has taken the message. A permanent failure (the user blocked the bot, DMs
are closed) marks that chat identity unreachable: nothing more is sent to it until the member
turns the channel on again, and the message stays in the member's web inbox."""


def _leased_json(leased: outbox.Leased) -> dict:
    return {"id": leased.id, "message_id": leased.message_id, "platform": leased.channel,
            "identity": leased.address, "chat_id": leased.address.partition(":")[2],
            "kind": leased.kind, "period": leased.period, "subject": leased.subject,
            "text": leased.text, "attempt": leased.attempts,
            "lease_expires_at": when(leased.lease_expires_at)}


@api.route("POST", "/bot/outbox/lease", summary="Lease messages to send to one chat network",
           scope="bot", body=OutboxLease, own_connections=True, description=DELIVERY,
           errors=("invalid_request",))
async def lease(call: Call):
    only_the_bot_itself(call)
    body: OutboxLease = call.body
    app = call.request.app
    engine, options = app[keys.engine_key], app[keys.gateway_settings_key]
    stopping = app[keys.stopping_key]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(body.wait, options.outbox_wait_max_seconds)
    while True:
        # A short transaction a look: a waiting bot holds no connection (nor SQLite's lock).
        async with engine.begin() as conn:
            leased = await outbox.lease(conn, body.platform, body.max,
                                        lease_seconds=body.lease_seconds)
        left = deadline - loop.time()
        if leased or left <= 0 or stopping.is_set():
            break
        # A stopping server answers a waiting bot at once (it asks again, of another one).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), min(options.outbox_poll_seconds, left))
    return {"messages": [_leased_json(m) for m in leased], "lease_seconds": body.lease_seconds}


@api.route("POST", "/bot/outbox/{id}/ack", summary="The message was delivered", scope="bot",
           description=DELIVERY, errors=("not_found",), batched=True)
async def ack(call: Call):
    only_the_bot_itself(call)
    delivery_id = call.path_id()
    # Concurrent acknowledgements are written together, each answered once committed.
    if not await call.request.app[keys.ack_batcher_key].submit(delivery_id):
        raise NotFound(f"no outbox message with id {delivery_id}")
    return {"id": delivery_id, "state": "sent"}


@api.route("POST", "/bot/outbox/ack", summary="Several messages were delivered", scope="bot",
           body=OutboxAckMany, description=DELIVERY)
async def ack_many(call: Call):
    only_the_bot_itself(call)
    acknowledged = await outbox.ack_many(call.conn, call.body.ids, channel=CHAT_CHANNELS)
    # Ids unknown, of e-mail, or acknowledged before are not counted.
    return {"acknowledged": acknowledged}


FAILING = """

The body says when to try again: `{}` (or only a `reason`) is a plain retry after the
back-off; `retry_after` asks for at least that many seconds (a platform's rate limit);
`permanent: true` gives up on the address for good. `retry_after` and `permanent: true`
together are refused."""


@api.route("POST", "/bot/outbox/{id}/fail", summary="The message could not be delivered",
           scope="bot", body=OutboxFail, description=DELIVERY + FAILING,
           errors=("not_found", "invalid_request"))
async def fail(call: Call):
    only_the_bot_itself(call)
    body: OutboxFail = call.body
    delivery_id = call.path_id()
    state = await outbox.fail(call.conn, delivery_id, channel=CHAT_CHANNELS,
                              retry_after=body.retry_after, permanent=body.permanent,
                              reason=body.reason)
    found = await outbox.delivery(call.conn, delivery_id)
    return {"id": delivery_id, "state": state, "attempts": found["attempts"],
            "retry_at": when(found["available_at"]) if state == "pending" else None,
            "error": found["last_error"]}
