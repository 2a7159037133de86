"""Revenue out: transfers to giving, payouts; and the monthly statement."""

import uuid

from core import funding, payouts
from core.money import parse_positive_amount
from core.periods import Period
from core.statements import balances_of, statement_of
from gateway.api import Api, Call
from gateway.present import money, when, with_amounts
from gateway.schemas import AmountBody, OptionalAmountBody

api = Api()


def payout_json(made: payouts.Payout) -> dict:
    return {"id": made.id, "amount": money(made.amount_micros), "status": made.status,
            "created_at": when(made.created_at), "resolved_at": when(made.resolved_at)}


@api.route("POST", "/transfers", summary="Move revenue to the giving balance", scope="account",
           body=AmountBody, status=201, money=True,
           errors=("invalid_amount", "insufficient_funds"))
async def transfer(call: Call):
    amount = parse_positive_amount(call.body.amount)
    key = call.request.headers.get("Idempotency-Key") or uuid.uuid4().hex
    await funding.transfer_revenue_to_giving(call.conn, call.member_id, amount,
                                             idempotency_key=key)
    balances = await balances_of(call.conn, call.member_id)
    return {"transferred": money(amount), "giving": money(balances["giving"]),
            "revenue": money(balances["revenue"])}


@api.route("POST", "/payouts", summary="Ask for a payout of revenue (whole cents)",
           scope="account", body=OptionalAmountBody, status=201, money=True,
           errors=("invalid_amount", "insufficient_funds", "below_payout_threshold",
                   "debt_outstanding"))
async def request_payout(call: Call):
    amount = call.body.amount
    made = await payouts.request_payout(
        call.conn, call.member_id, call.settings,
        amount_micros=parse_positive_amount(amount) if amount is not None else None,
    )
    return {"payout": payout_json(made)}


@api.route("GET", "/payouts", summary="The member's payouts", scope="read")
async def list_payouts(call: Call):
    return {"payouts": [payout_json(p) for p in await payouts.payouts_of(call.conn,
                                                                           call.member_id)]}


@api.route("GET", "/statements/{period}", summary="The member's statement of a month",
           scope="read", errors=("invalid_period",))
async def statement(call: Call):
    period = Period.parse(call.request.match_info["period"])
    return with_amounts(await statement_of(call.conn, call.member_id, period))
