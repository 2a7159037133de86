"""Recurring flattrs."""

from core import subscriptions
from core.things import thing_by_id
from gateway.api import Api, Call
from gateway.present import when
from gateway.schemas import SubscriptionBody

api = Api()


async def subscription_json(call: Call, made: subscriptions.Subscription) -> dict:
    thing = await thing_by_id(call.conn, made.thing_id)
    return {"id": made.id, "thing": thing.key, "first_period": made.first_period,
            "last_period": made.last_period, "created_at": when(made.created_at),
            "cancelled_at": when(made.cancelled_at)}


@api.route("POST", "/subscriptions", summary="Flattr a thing every month for N months",
           scope="flattr", body=SubscriptionBody, status=201, money=True,
           errors=("invalid_url", "invalid_thing", "own_thing", "debt_outstanding"))
async def subscribe(call: Call):
    body: SubscriptionBody = call.body
    made = await subscriptions.subscribe(
        call.conn, call.member_id, body.url or body.thing, body.months
    )
    return {"subscription": await subscription_json(call, made)}


@api.route("GET", "/subscriptions", summary="The member's subscriptions", scope="read")
async def list_subscriptions(call: Call):
    found = await subscriptions.subscriptions_of(call.conn, call.member_id)
    return {"subscriptions": [await subscription_json(call, s) for s in found]}


@api.route("DELETE", "/subscriptions/{id}", summary="Cancel a subscription", scope="flattr",
           errors=("not_found",))
async def cancel(call: Call):
    cancelled = await subscriptions.cancel(call.conn, call.member_id, call.path_id())
    return {"subscription": await subscription_json(call, cancelled)}
