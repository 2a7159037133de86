from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidAmount, InvariantBroken
from core.money import (
    MAX_AMOUNT_MICROS,
    MICROS_PER_UNIT,
    fee_of,
    format_amount,
    format_money,
    parse_amount,
    parse_positive_amount,
    split_evenly,
    whole_cents,
)

amounts = st.integers(min_value=0, max_value=MAX_AMOUNT_MICROS)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0", 0),
        ("0.0", 0),
        ("2", 2_000_000),
        ("2.5", 2_500_000),
        ("2.50", 2_500_000),
        ("0.000001", 1),
        ("0.1", 100_000),
        (" 3.1 ", 3_100_000),
        ("\t7\n", 7_000_000),
        ("007.25", 7_250_000),
        ("1.0000000", 1_000_000),  # trailing zeros beyond 6 decimals change nothing
        ("123456.789012", 123_456_789_012),
        ("1000000000", MAX_AMOUNT_MICROS),
        ("999999999.999999", MAX_AMOUNT_MICROS - 1),
    ],
)
def test_parse_amount(text: str, micros: int) -> None:
    assert parse_amount(text) == micros


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "not a plain decimal"),
        ("1e3", "not a plain decimal"),
        ("1E-6", "not a plain decimal"),
        ("-1", "not a plain decimal"),
        ("+1", "not a plain decimal"),
        ("-0", "not a plain decimal"),
        ("NaN", "not a plain decimal"),
        ("nan", "not a plain decimal"),
        ("Infinity", "not a plain decimal"),
        ("inf", "not a plain decimal"),
        ("1_000", "not a plain decimal"),
        ("1,5", "not a plain decimal"),
        (".5", "not a plain decimal"),
        ("5.", "not a plain decimal"),
        ("1.2.3", "not a plain decimal"),
        ("1 000", "not a plain decimal"),
        ("٣", "not a plain decimal"),  # Arabic-Indic digit, which Decimal would accept
        ("0x10", "not a plain decimal"),
        ("0." + "0" * 60 + "1", "not a plain decimal"),
        ("0.0000001", "more than 6 decimal places"),
        ("1.0000005", "more than 6 decimal places"),
        ("1000000000.000001", "above the maximum"),
        ("99999999999999999999", "above the maximum"),
        (2, "decimal string"),
        (2.5, "decimal string"),
        (True, "decimal string"),
        (None, "decimal string"),
        (Decimal("2"), "decimal string"),
    ],
)
def test_parse_amount_refuses(value: object, fragment: str) -> None:
    with pytest.raises(InvalidAmount, match=fragment) as caught:
        parse_amount(value)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_amount"


def test_parse_positive_amount() -> None:
    assert parse_positive_amount("0.000001") == 1
    for zero in ("0", "0.00", " 0 "):
        with pytest.raises(InvalidAmount, match="greater than zero"):
            parse_positive_amount(zero)
    with pytest.raises(InvalidAmount):
        parse_positive_amount("-1")


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "0.00"),
        (1, "0.000001"),
        (10, "0.00001"),
        (10_000, "0.01"),
        (100_000, "0.10"),
        (1_234_000, "1.234"),
        (2_000_000, "2.00"),
        (2_500_000, "2.50"),
        (123_456_789_012, "123456.789012"),
        (MAX_AMOUNT_MICROS, "1000000000.00"),
        (-1, "-0.000001"),
        (-1_500_000, "-1.50"),
    ],
)
def test_format_amount(micros: int, text: str) -> None:
    assert format_amount(micros) == text


@pytest.mark.parametrize("value", [1.5, True, "1", None])
def test_format_amount_needs_an_int(value: object) -> None:
    with pytest.raises(TypeError):
        format_amount(value)  # type: ignore[arg-type]


@given(amounts)
def test_format_then_parse_round_trips(micros: int) -> None:
    text = format_amount(micros)
    assert parse_amount(text) == micros
    assert 2 <= len(text.partition(".")[2]) <= 6


decimal_texts = st.builds(
    lambda units, decimals: f"{units}.{decimals}" if decimals else str(units),
    st.integers(min_value=0, max_value=MAX_AMOUNT_MICROS // MICROS_PER_UNIT - 1),
    st.text(alphabet="0123456789", max_size=6),
)


@given(decimal_texts)
def test_parse_then_format_round_trips(text: str) -> None:
    micros = parse_amount(text)
    assert Decimal(micros) / MICROS_PER_UNIT == Decimal(text)
    assert parse_amount(format_amount(micros)) == micros


@pytest.mark.parametrize(
    ("total", "parts", "shares"),
    [
        (0, 1, [0]),
        (0, 3, [0, 0, 0]),
        (1, 3, [1, 0, 0]),
        (2, 3, [1, 1, 0]),
        (10, 3, [4, 3, 3]),
        (9, 3, [3, 3, 3]),
        (7, 1, [7]),
        (3, 5, [1, 1, 1, 0, 0]),
    ],
)
def test_split_evenly(total: int, parts: int, shares: list[int]) -> None:
    assert split_evenly(total, parts) == shares


@given(amounts, st.integers(min_value=1, max_value=500))
def test_split_evenly_is_exact_and_fair(total: int, parts: int) -> None:
    shares = split_evenly(total, parts)
    assert len(shares) == parts
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)


@pytest.mark.parametrize(("total", "parts"), [(10, 0), (10, -1), (-1, 2)])
def test_split_evenly_refuses(total: int, parts: int) -> None:
    with pytest.raises(InvariantBroken):
        split_evenly(total, parts)


@pytest.mark.parametrize(
    ("charge", "fee_bps", "fee"),
    [
        (0, 500, 0),
        (1_000_000, 0, 0),
        (1_000_000, 500, 50_000),
        (1_000_000, 10_000, 1_000_000),
        (1, 9_999, 0),  # rounds down
        (19, 500, 0),
        (20, 500, 1),
        (39, 500, 1),
        (40, 500, 2),
        (3_333_333, 250, 83_333),
        (MAX_AMOUNT_MICROS, 1, 10**11),
    ],
)
def test_fee_of(charge: int, fee_bps: int, fee: int) -> None:
    assert fee_of(charge, fee_bps) == fee


@pytest.mark.parametrize(("charge", "fee_bps"), [(-1, 100), (100, -1), (100, 10_001)])
def test_fee_of_refuses(charge: int, fee_bps: int) -> None:
    with pytest.raises(InvariantBroken):
        fee_of(charge, fee_bps)


@given(amounts, st.integers(min_value=0, max_value=10_000))
def test_fee_never_exceeds_exact_fee(charge: int, fee_bps: int) -> None:
    fee = fee_of(charge, fee_bps)
    exact = Decimal(charge) * fee_bps / 10_000
    assert 0 <= fee <= exact < fee + 1


@pytest.mark.parametrize(
    ("micros", "cents"),
    [
        (0, 0),
        (9_999, 0),
        (10_000, 10_000),
        (10_001, 10_000),
        (2_345_678, 2_340_000),
        (-1, -10_000),
    ],
)
def test_whole_cents(micros: int, cents: int) -> None:
    assert whole_cents(micros) == cents


@given(amounts)
def test_whole_cents_property(micros: int) -> None:
    cents = whole_cents(micros)
    assert cents % 10_000 == 0
    assert 0 <= micros - cents < 10_000


@pytest.mark.parametrize(
    ("micros", "currency", "shown"),
    [
        (2_500_000, "EUR", "€2.50"),
        (1, "EUR", "€0.000001"),
        (0, "USD", "$0.00"),
        (1_234_567_890, "GBP", "£1234.56789"),
        (-2_500_000, "EUR", "-€2.50"),
        (2_500_000, "CHF", "2.50 CHF"),
        (-10_000, "SEK", "-0.01 SEK"),
    ],
)
def test_format_money(micros: int, currency: str, shown: str) -> None:
    assert format_money(micros, currency) == shown


@given(st.integers(min_value=-MAX_AMOUNT_MICROS, max_value=MAX_AMOUNT_MICROS))
def test_format_money_is_the_exact_amount(micros: int) -> None:
    shown = format_money(micros, "EUR")
    assert parse_amount(shown.removeprefix("-").removeprefix("€")) == abs(micros)
    assert shown.startswith("-") == (micros < 0)
