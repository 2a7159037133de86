"""Where a member's payouts go: their IBAN and the account holder's name."""

from core.payout_accounts import payout_account, remove_payout_account, set_payout_account
from core.payout_methods import BankAccount
from gateway.api import Api, Call
from gateway.present import money
from gateway.schemas import PayoutAccountBody

api = Api()


def account_json(account: BankAccount | None) -> dict | None:
    if account is None:
        return None
    return {"iban": account.iban, "name": account.holder_name, "bic": account.bic}


@api.route("GET", "/me/payout-account", summary="The member's bank account for payouts",
           scope="read")
async def show(call: Call):
    return {"payout_account": account_json(await payout_account(call.conn, call.member_id)),
            "payout_threshold": money(call.settings.payout_threshold)}


@api.route("PUT", "/me/payout-account", summary="Set the bank account payouts go to (SEPA)",
           scope="account", body=PayoutAccountBody, errors=("invalid_bank_account",),
           description="The IBAN is checked (check digits, country format, SEPA zone) and "
                       "kept compact; payouts already sent keep the account they went to.")
async def put(call: Call):
    body: PayoutAccountBody = call.body
    account = await set_payout_account(call.conn, call.member_id, body.iban, body.name,
                                       body.bic)
    return {"payout_account": account_json(account)}


@api.route("DELETE", "/me/payout-account", summary="Forget the bank account for payouts",
           scope="account")
async def delete(call: Call):
    return {"removed": await remove_payout_account(call.conn, call.member_id)}
