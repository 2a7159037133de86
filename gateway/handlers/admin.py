"""Admin routes (scope `admin`): credits, settlements and the outbox's deliveries."""

import uuid

from core import funding, members, outbox
from core.db import create_engine
from core.errors import InsufficientScope
from core.money import parse_positive_amount
from core.periods import Period
from core.settlement import settle_period
from core.settlement.summary import settlement_summary
from core.statements import balances_of
from gateway.api import Api, Call
from gateway.present import money, with_amounts
from gateway.schemas import AdminCredit, AdminSettlement, OutboxQuery

api = Api()


def _admin(call: Call) -> None:
    if call.principal.acting_for:
        raise InsufficientScope("a bot cannot act as an admin")


@api.route("POST", "/admin/credits", summary="Credit a member's giving balance (manual funding)",
           scope="admin", body=AdminCredit, status=201, money=True,
           errors=("not_found", "invalid_amount"))
async def credit(call: Call):
    _admin(call)
    member = await members.member_by_handle(call.conn, call.body.handle)
    amount = parse_positive_amount(call.body.amount)
    key = call.request.headers.get("Idempotency-Key") or uuid.uuid4().hex
    recorded = await funding.credit(call.conn, member.id, amount,
                                    idempotency_key=f"api:{call.member_id}:{key}")
    balances = await balances_of(call.conn, member.id)
    return {"handle": member.handle, "credited": money(amount), "replayed": not recorded.created,
            "giving": money(balances["giving"])}


@api.route("POST", "/admin/settlements", summary="Settle a month that has ended",
           scope="admin", body=AdminSettlement, writes=False,
           errors=("invalid_period", "period_closed", "settlement_running",
                   "period_out_of_order"))
async def settle(call: Call):
    _admin(call)
    period = Period.parse(call.body.period)
    # Its own engine: a month's statements may run longer than the click path's timeouts.
    engine = create_engine(call.settings.database_url)
    try:
        result = await settle_period(engine, period, call.settings)
        async with engine.connect() as conn:
            summary = await settlement_summary(conn, period)
    finally:
        await engine.dispose()
    return {**with_amounts(summary), "already_settled": result.already_settled}


@api.route("GET", "/admin/outbox", summary="Deliveries of the outbox, newest first (dead ones…)",
           scope="admin", query=OutboxQuery)
async def list_outbox(call: Call):
    _admin(call)
    found = await outbox.deliveries(call.conn, state=call.query.state, limit=call.query.limit)
    return {"deliveries": [with_amounts(d) for d in found]}


@api.route("POST", "/admin/outbox/{id}/retry", summary="Send a delivery again, from a fresh "
           "count of tries", scope="admin", errors=("not_found", "invalid_state"))
async def retry_delivery(call: Call):
    _admin(call)
    return {"delivery": with_amounts(await outbox.retry(call.conn, call.path_id()))}
