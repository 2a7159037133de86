"""Log lines of the gateway's processes: text or one JSON object a line, each line of a
request marked with its request id.

The id lives in a context variable set by the edge middleware for the request's duration,
so that every line logged while answering it, in whichever module, carries it.
"""

import contextvars
import itertools
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

REQUEST_ID_HEADER = "X-Request-Id"
# What a client may choose as its request id: up to 128 letters, digits and . _ : -, so
# that it cannot forge fields of a text log line (no spaces, no `=`) nor break a header.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The attributes every LogRecord has; any other one came from `extra=` and is written too.
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "taskName"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None)


# A new id is this process's random half and a count: unique like a uuid4, without asking
# the kernel for random bytes on every request of the click path.
_PROCESS_PART = uuid.uuid4().hex[:16]
_ids_made = itertools.count()


def request_id_from(header: str | None) -> str:
    """The client's id when it is one we can log and echo safely, else a new one."""
    if header is not None and REQUEST_ID_PATTERN.fullmatch(header):
        return header
    return f"{_PROCESS_PART}{next(_ids_made):016x}"


class RequestIdFilter(logging.Filter):
    """Puts the id of the request being answered (or None) on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        extra = _extra_fields(record)
        if extra:
            line += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        return f"{line} request_id={request_id}" if request_id else line


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id inside a request, the process id, the
    fields given with `extra=`, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            fields["request_id"] = request_id
        fields.update(_extra_fields(record))
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        return orjson.dumps(fields, default=str).decode()


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items()
            if key not in RECORD_ATTRIBUTES and not key.startswith("_")}


class StderrHandler(logging.StreamHandler):
    """Writes to standard error as it is when a line is written (a CLI test's capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _stream: Any) -> None:
        pass


def without_migration_chatter(record: logging.LogRecord) -> bool:
    """Alembic's two lines at every start ("Context impl", "Will assume … DDL") say nothing
    to act on, and a cron job's `flattr worker --once` would mail them; its "Running
    upgrade" lines stay."""
    return not (record.name == "alembic.runtime.migration"
                and str(record.msg).startswith(("Context impl", "Will assume")))


def configure_logging(log_format: Literal["text", "json"], level: str) -> None:
    """One handler on the root logger, writing to standard error (run once a process): the
    gateway's processes and the worker's."""
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(without_migration_chatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
