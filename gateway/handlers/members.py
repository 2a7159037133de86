"""Sign-up, the member's own page (/me) and their budget."""

from sqlalchemy import func, select

from core import flattrs as core_flattrs
from core import members
from core.money import fee_of, parse_amount
from core.periods import Period
from core.schema import flattrs
from core.statements import balances_of
from gateway import keys
from gateway.api import Api, Call
from gateway.present import money, when
from gateway.schemas import AmountBody, NewMember

api = Api()


@api.route("POST", "/members", summary="Create a member (sign up)", scope=None, body=NewMember,
           status=201, own_connections=True,
           errors=("invalid_handle", "invalid_email", "invalid_password", "handle_taken",
                   "rate_limited"))
async def create_member(call: Call):
    body: NewMember = call.body
    members.handle_key(body.handle)  # a handle that cannot be is refused before hashing
    call.request.app[keys.sign_in_limiter_key].sign_up(call.request)
    # Hashed in a worker thread before the transaction, which holds no lock meanwhile.
    password_hash = await call.request.app[keys.passwords_key].hash(body.password)
    async with call.request.app[keys.engine_key].begin() as conn:
        made = await members.create_member(conn, body.handle, email=body.email,
                                           password_hash=password_hash)
    return {"member": member_json(made)}


def member_json(member: members.Member) -> dict:
    return {"id": member.id, "handle": member.handle, "email": member.email,
            "budget": money(member.budget_micros), "created_at": when(member.created_at)}


@api.route("GET", "/me", summary="The member, balances, budget and this month", scope="read",
           description="`received` counts this month's flattrs so far on the member's things "
                       "by others (`flattrs`) and the members who made them (`members`).")
async def me(call: Call):
    member = await members.member_by_id(call.conn, call.member_id)
    return await month_of(call, member)


async def month_of(call: Call, member: members.Member) -> dict:
    balances = await balances_of(call.conn, member.id)
    period = Period.current()
    count = await call.conn.scalar(
        select(func.count()).where(flattrs.c.member_id == member.id,
                                   flattrs.c.period == str(period))
    )
    received, givers = await core_flattrs.received_in(call.conn, member.id, period)
    settings = call.settings
    chargeable = min(member.budget_micros or 0, balances["giving"])
    funded = chargeable >= settings.minimum_budget
    net = chargeable - fee_of(chargeable, settings.fee_bps) if funded else 0
    return {
        "member": member_json(member),
        "balances": {"giving": money(balances["giving"]), "revenue": money(balances["revenue"]),
                     "held_for_you": money(balances["held_for_you"]),
                     # What a refund or dispute left owing: no flattrs until it is repaid.
                     "debt": money(-balances.get("debt", 0))},
        "budget": money(member.budget_micros),
        "minimum_budget": money(settings.minimum_budget),
        "period": str(period),
        "flattr_count": count,
        "funded": funded,
        "estimated_share": money(net // count if count else net) if funded else None,
        "received": {"flattrs": received, "members": givers},
    }


@api.route("PUT", "/me/budget", summary="Set the monthly budget", scope="account",
           body=AmountBody, money=True, errors=("invalid_amount", "budget_below_minimum"),
           chat_user_may=True, description="A bot acting for a chat user (Flattr-Identity) "
           "may set that member's budget: the /budget command of the chat bots.")
async def set_budget(call: Call):
    updated = await members.set_budget(
        call.conn, call.member_id, parse_amount(call.body.amount), call.settings
    )
    return {"budget": money(updated.budget_micros)}
