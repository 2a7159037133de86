"""Time, in one place, so that tests and admins can pin it."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
