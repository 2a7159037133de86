"""The one small interface of a way to pay in: quote a top-up, then start paying it.

A source (core/funding/stripe.py) tells the member what a top-up costs before they pay
(`quote`) and opens the payment (`start`); the money is credited later, when the source
confirms it (`core.funding.credit`), and taken back the same way (`core.funding.reverse`).
The manual source (core/funding/manual.py) has no such steps: an admin credits directly.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import InvalidAmount, check
from core.money import CENT_MICROS, MAX_FEE_BPS, format_amount


@dataclass(frozen=True)
class Quote:
    amount_micros: int  # what reaches the giving balance
    fee_micros: int  # the payment provider's fee, paid on top
    minimum_micros: int
    maximum_micros: int

    @property
    def total_micros(self) -> int:
        return self.amount_micros + self.fee_micros


@dataclass(frozen=True)
class Started:
    """A payment opened for a member: where they pay, and the provider's name for it."""

    quote: Quote
    reference: str
    pay_url: str
    created_at: datetime


class FundingSource(Protocol):
    name: str  # as recorded on each funding

    def quote(self, amount_micros: int) -> Quote: ...

    async def start(self, engine: AsyncEngine, member_id: int, quote: Quote, *,
                    idempotency_key: str) -> Started: ...


def card_fee(amount_micros: int, fee_bps: int, fixed_micros: int) -> int:
    """The fee to add to `amount` so that, after the provider keeps `fee_bps` of the total
    (rounded up to the cent) and `fixed`, `amount` is left: the smallest such fee, in cents."""
    check(amount_micros % CENT_MICROS == 0 and fixed_micros % CENT_MICROS == 0,
          "card fees are computed in whole cents")
    check(0 <= fee_bps < MAX_FEE_BPS, "a card fee is below 100 %")
    amount, fixed = amount_micros // CENT_MICROS, fixed_micros // CENT_MICROS

    def kept(total: int) -> int:  # what the provider keeps of `total` cents
        return -(-total * fee_bps // MAX_FEE_BPS) + fixed

    total = -(-(amount + fixed) * MAX_FEE_BPS // (MAX_FEE_BPS - fee_bps))
    for _ in range(4):  # the closed form is at most a cent or two off, either way
        if total - kept(total) < amount:
            total += 1
        elif total - 1 - kept(total - 1) >= amount:
            total -= 1
        else:
            break
    check(total - kept(total) >= amount > total - 1 - kept(total - 1), "card fee not minimal")
    return (total - amount) * CENT_MICROS


def quote_top_up(amount_micros: int, *, minimum_micros: int, maximum_micros: int,
                 fee_bps: int, fixed_fee_micros: int, currency: str) -> Quote:
    if amount_micros % CENT_MICROS:
        raise InvalidAmount("a top-up is a whole number of cents")
    if not minimum_micros <= amount_micros <= maximum_micros:
        raise InvalidAmount(
            f"a top-up is between {format_amount(minimum_micros)} and "
            f"{format_amount(maximum_micros)} {currency}")
    return Quote(amount_micros, card_fee(amount_micros, fee_bps, fixed_fee_micros),
                 minimum_micros, maximum_micros)
