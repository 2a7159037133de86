"""How core objects look in JSON: money as decimal strings, times in ISO 8601 UTC."""

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from core.money import format_amount


def money(micros: int | None) -> str | None:
    return None if micros is None else format_amount(int(micros))


@lru_cache(maxsize=1024)  # a batch of clicks shares one moment
def when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def with_amounts(values: dict[str, Any]) -> dict[str, Any]:
    """`charged_micros: 5000000` → `charged: "5.00"`, recursively; times as ISO strings."""
    shown: dict[str, Any] = {}
    for name, value in values.items():
        if name.endswith("_micros"):
            shown[name.removesuffix("_micros")] = money(value)
        elif isinstance(value, datetime):
            shown[name] = when(value)
        elif isinstance(value, list):
            shown[name] = [with_amounts(v) if isinstance(v, dict) else v for v in value]
        elif isinstance(value, dict):
            shown[name] = with_amounts(value)
        else:
            shown[name] = value
    return shown
