"""JSON in and out, through orjson."""

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


def loads(raw: bytes) -> Any:
    return orjson.loads(raw)
