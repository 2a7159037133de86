"""Monthly settlement periods, always in UTC."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

from core.errors import InvalidPeriod

MIN_YEAR = 2000
MAX_YEAR = 9999

_PERIOD_RE = re.compile(r"([0-9]{4})-([0-9]{2})")


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month in UTC, e.g. 2026-11. Orders chronologically."""

    year: int
    month: int

    def __post_init__(self) -> None:
        for name, value in (("year", self.year), ("month", self.month)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidPeriod(f"period {name} must be an int, not {value!r}")
        if not MIN_YEAR <= self.year <= MAX_YEAR:
            raise InvalidPeriod(f"period year {self.year} is outside {MIN_YEAR}..{MAX_YEAR}")
        if not 1 <= self.month <= 12:
            raise InvalidPeriod(f"period month {self.month} is outside 1..12")

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse exactly "YYYY-MM", e.g. "2026-11"."""
        if not isinstance(text, str):
            raise InvalidPeriod(f'period must be a string like "2026-11", not {text!r}')
        match = _PERIOD_RE.fullmatch(text)
        if match is None:
            raise InvalidPeriod(f"period {text[:20]!r} is not in the form YYYY-MM, e.g. 2026-11")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, moment: datetime) -> Self:
        """The period containing `moment`, which must be timezone-aware."""
        utc = _as_utc(moment)
        return cls(utc.year, utc.month)

    @classmethod
    def current(cls, now: datetime | None = None) -> Self:
        return cls.of(now if now is not None else datetime.now(UTC))

    def next(self) -> "Period":
        return self.plus_months(1)

    def previous(self) -> "Period":
        return self.plus_months(-1)

    def plus_months(self, n: int) -> "Period":
        year, month_index = divmod(self._index + n, 12)
        return Period(year, month_index + 1)

    def months_since(self, earlier: "Period") -> int:
        """Whole months from `earlier` to this period; negative if `earlier` is later."""
        return self._index - earlier._index

    @property
    def starts_at(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def ends_at(self) -> datetime:
        """Start of the next period (exclusive end). Refused for 9999-12, the last period."""
        return self.next().starts_at

    def has_ended(self, now: datetime | None = None) -> bool:
        return Period.current(now) > self

    @property
    def _index(self) -> int:
        return self.year * 12 + self.month - 1


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no timezone; pass an aware one")
    return moment.astimezone(UTC)
