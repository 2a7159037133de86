"""The card fee shown before paying: the least that leaves the whole top-up after the fee."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidAmount
from core.funding.source import card_fee, quote_top_up
from core.money import CENT_MICROS
from core.money import parse_amount as eur


def kept_by_provider(total_cents: int, fee_bps: int, fixed_cents: int) -> int:
    """What Stripe keeps of a charge: its percentage rounded up to the cent, and the fixed
    part (rounding up is the member's worst case, so the fee always covers it)."""
    return -(-total_cents * fee_bps // 10_000) + fixed_cents


@given(amount_cents=st.integers(1, 10**9), fee_bps=st.integers(0, 5_000),
       fixed_cents=st.integers(0, 10_000))
def test_the_fee_is_the_least_that_leaves_the_whole_amount(amount_cents, fee_bps, fixed_cents):
    fee = card_fee(amount_cents * CENT_MICROS, fee_bps, fixed_cents * CENT_MICROS)
    assert fee % CENT_MICROS == 0 and fee >= 0
    total = amount_cents + fee // CENT_MICROS
    assert total - kept_by_provider(total, fee_bps, fixed_cents) >= amount_cents
    assert total - 1 - kept_by_provider(total - 1, fee_bps, fixed_cents) < amount_cents


def test_a_ten_euro_top_up_at_stripes_european_card_rate():
    assert card_fee(eur("10"), 150, eur("0.25")) == eur("0.41")  # 10.41 - 0.16 - 0.25 = 10


@pytest.mark.parametrize("amount", ["4.99", "500.01", "10.005"])
def test_top_ups_outside_the_limits_or_cents_are_refused(amount):
    with pytest.raises(InvalidAmount):
        quote_top_up(eur(amount), minimum_micros=eur("5"), maximum_micros=eur("500"),
                     fee_bps=150, fixed_fee_micros=eur("0.25"), currency="EUR")
