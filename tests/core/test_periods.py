from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidPeriod
from core.periods import Period

periods = st.builds(
    Period, st.integers(min_value=2000, max_value=9998), st.integers(min_value=1, max_value=12)
)


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("2026-11", Period(2026, 11)),
        ("2000-01", Period(2000, 1)),
        ("9999-12", Period(9999, 12)),
        ("2026-09", Period(2026, 9)),
    ],
)
def test_parse(text: str, period: Period) -> None:
    assert Period.parse(text) == period
    assert str(period) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-1",
        "2026-13",
        "2026-00",
        "26-11",
        "1999-12",
        "02026-11",
        " 2026-11",
        "2026-11 ",
        " 2026-11x",
        "2026-11\n",
        "2026/11",
        "2026-11-01",
        "202611",
        "２０２６-１１",  # full-width digits
        "abcd-ef",
    ],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(InvalidPeriod) as caught:
        Period.parse(text)
    assert caught.value.code == "invalid_period"


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(InvalidPeriod):
        Period.parse(202611)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("year", "month"), [(1999, 12), (10000, 1), (2026, 0), (2026, 13), (2026, True), ("2026", 1)]
)
def test_constructor_validates(year: object, month: object) -> None:
    with pytest.raises(InvalidPeriod):
        Period(year, month)  # type: ignore[arg-type]


def test_orders_chronologically() -> None:
    assert Period(2025, 12) < Period(2026, 1) < Period(2026, 2)
    assert sorted([Period(2026, 3), Period(2025, 11), Period(2026, 1)]) == [
        Period(2025, 11),
        Period(2026, 1),
        Period(2026, 3),
    ]


@pytest.mark.parametrize(
    ("moment", "period"),
    [
        (datetime(2026, 11, 15, 12, 0, tzinfo=UTC), Period(2026, 11)),
        (datetime(2026, 11, 1, 0, 0, tzinfo=UTC), Period(2026, 11)),
        (datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC), Period(2026, 11)),
        # 00:30 on 1 December in UTC+1 is still November in UTC.
        (datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), Period(2026, 11)),
        # 20:00 on 31 December in UTC-5 is already January in UTC.
        (datetime(2026, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5))), Period(2027, 1)),
    ],
)
def test_of(moment: datetime, period: Period) -> None:
    assert Period.of(moment) == period


def test_of_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        Period.of(datetime(2026, 11, 15))
    with pytest.raises(ValueError, match="naive"):
        Period.current(datetime(2026, 11, 15))


def test_current() -> None:
    assert Period.current(datetime(2026, 11, 15, tzinfo=UTC)) == Period(2026, 11)
    assert Period.current() == Period.of(datetime.now(UTC))


@pytest.mark.parametrize(
    ("period", "n", "expected"),
    [
        (Period(2026, 11), 0, Period(2026, 11)),
        (Period(2026, 11), 1, Period(2026, 12)),
        (Period(2026, 12), 1, Period(2027, 1)),
        (Period(2026, 1), -1, Period(2025, 12)),
        (Period(2026, 11), 14, Period(2028, 1)),
        (Period(2026, 11), -23, Period(2024, 12)),
        (Period(2026, 11), -24, Period(2024, 11)),
    ],
)
def test_plus_months(period: Period, n: int, expected: Period) -> None:
    assert period.plus_months(n) == expected


def test_next_and_previous() -> None:
    assert Period(2026, 12).next() == Period(2027, 1)
    assert Period(2027, 1).previous() == Period(2026, 12)


def test_cannot_leave_the_supported_range() -> None:
    with pytest.raises(InvalidPeriod):
        Period(2000, 1).previous()
    with pytest.raises(InvalidPeriod):
        Period(9999, 12).next()
    with pytest.raises(InvalidPeriod):
        _ = Period(9999, 12).ends_at


@pytest.mark.parametrize(
    ("later", "earlier", "months"),
    [
        (Period(2026, 11), Period(2026, 5), 6),
        (Period(2026, 11), Period(2026, 11), 0),
        (Period(2027, 1), Period(2026, 12), 1),
        (Period(2026, 5), Period(2026, 11), -6),
        (Period(2030, 3), Period(2026, 11), 40),
    ],
)
def test_months_since(later: Period, earlier: Period, months: int) -> None:
    assert later.months_since(earlier) == months


def test_bounds() -> None:
    period = Period(2026, 12)
    assert period.starts_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert period.ends_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert period.starts_at.tzinfo is UTC
    assert Period(2024, 2).ends_at - Period(2024, 2).starts_at == timedelta(days=29)


@pytest.mark.parametrize(
    ("now", "ended"),
    [
        (datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC), False),
        (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 1, 0, 0, tzinfo=UTC), False),
        (datetime(2026, 10, 31, tzinfo=UTC), False),
        (datetime(2027, 6, 1, tzinfo=UTC), True),
        (datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), False),
    ],
)
def test_has_ended(now: datetime, ended: bool) -> None:
    assert Period(2026, 11).has_ended(now) is ended


def test_has_ended_defaults_to_now() -> None:
    assert Period(2000, 1).has_ended()
    assert not Period(9999, 12).has_ended()


@given(periods, st.integers(min_value=-100, max_value=100))
def test_plus_months_and_months_since_agree(period: Period, n: int) -> None:
    try:
        moved = period.plus_months(n)
    except InvalidPeriod:
        return
    assert moved.months_since(period) == n
    assert moved.plus_months(-n) == period
    assert (moved > period) == (n > 0)


@given(periods)
def test_bounds_are_contiguous(period: Period) -> None:
    assert period.ends_at == period.next().starts_at
    assert Period.of(period.starts_at) == period
    assert Period.of(period.ends_at - timedelta(microseconds=1)) == period
    assert Period.parse(str(period)) == period
    assert not period.has_ended(period.ends_at - timedelta(microseconds=1))
    assert period.has_ended(period.ends_at)
