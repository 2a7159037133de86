"""/topup as both bots say it: how to use it (with the limits, and any debt), the card fee
before paying, and Stripe's Checkout page as a button. The card fee is paid on top, so the
whole amount reaches the giving balance, once Stripe confirms the payment to the gateway."""

import re

from bots.client import Funding, GatewayError, GatewayUnavailable, TopUp

AMOUNT = re.compile(r"^[0-9]{1,9}([.][0-9]{1,6})?$")
NOT_OFFERED = "Card top-ups aren't offered on this Flattr: ask an admin to credit you."
PROVIDER_DOWN = "Stripe, the card payment service, can't be reached right now: try again later."
# The gateway's own words are the clearest for these: a top-up's limits, why there is none.
SAID_BY_GATEWAY = frozenset({"funding_unavailable", "invalid_amount"})


def amount_of(text: str) -> str | None:
    """The amount as the gateway reads it (10, 2.50, or 2,50 as many write it), or None."""
    amount = text.strip().replace(",", ".")
    return amount if AMOUNT.match(amount) else None


def owed(funding: Funding) -> str:
    if not float(funding.debt) > 0:
        return ""
    return (f"You owe {funding.debt} {funding.currency} after a card refund or dispute: your "
            "flattrs are paused until a top-up repays it.\n")


def usage(funding: Funding, how: str) -> str:
    """What `/topup` alone says (`how`: the command with an amount, as this bot takes it)."""
    if not funding.card_funding:
        return owed(funding) + NOT_OFFERED
    return (f"{owed(funding)}Add funds by card with {how}: from {funding.minimum} to "
            f"{funding.maximum} {funding.currency}. The card fee is added on top, so the "
            "whole amount reaches your giving balance.")


def opened(top_up: TopUp) -> str:
    money = f"{top_up.amount} {top_up.currency}"
    return (f"Top-up of {money}: the card fee is {top_up.fee} {top_up.currency}, so you pay "
            f"{top_up.total} {top_up.currency} on Stripe's page. {money} reaches your giving "
            "balance once Stripe confirms the payment.")


def pay_label(top_up: TopUp) -> str:
    return f"Pay {top_up.total} {top_up.currency} by card"


def sentence(text: str) -> str:
    """The gateway's words as a sentence: capitalised, with a full stop."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def refused(error: GatewayError) -> str | None:
    """The words for a refused top-up, or None when the bot's usual explanation fits."""
    if isinstance(error, GatewayUnavailable):
        return PROVIDER_DOWN if error.last_code == "payment_provider_unavailable" else None
    if error.code in SAID_BY_GATEWAY and error.message:
        return sentence(error.message)
    return None
