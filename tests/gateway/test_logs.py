"""Request ids on every answer and every log line of a request; text or JSON log lines."""

import io
import json
import logging
import re
import socket
import sys

import pytest
from pydantic import ValidationError
from raw_http import exchange

from core.settings import Settings
from gateway.app import create_app
from gateway.logs import JsonFormatter, RequestIdFilter, TextFormatter, current_request_id

NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(("given", "kept"), [
    ("checkout-7f3a", True),
    ("a" * 128, True),
    ("trace:1.2_b-C", True),
    ("a" * 129, False),  # too long
    ("   ", False),  # nothing to trace by
    ("caf\u00e9", False),  # not ASCII
    ("x level=ERROR user=admin", False),  # would forge fields of a text log line
    ("x=1", False),
    ("a/b", False),
    ('"quoted"', False),
])
async def test_the_request_id_is_taken_from_the_request_when_it_is_fit(client, given, kept):
    response = await client.get("/healthz", headers={"X-Request-Id": given})
    answered = response.headers["X-Request-Id"]
    if kept:
        assert answered == given
    else:
        assert NEW_ID.fullmatch(answered), answered


async def test_every_answer_has_its_own_request_id(client):
    answers = [await client.get("/healthz"), await client.get("/api/v1/me"),
               await client.get("/no/such/page"), await client.post("/api/v1/flattrs", data="{")]
    assert [a.status for a in answers] == [200, 401, 404, 401]
    ids = [a.headers["X-Request-Id"] for a in answers]
    assert all(NEW_ID.fullmatch(i) for i in ids) and len(set(ids)) == 4, ids
    # Even a request the server cannot parse, answered before any middleware.
    unparsable = await exchange(client.host, client.port, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert unparsable.status == 501 and NEW_ID.fullmatch(unparsable.headers["x-request-id"])


async def test_the_extension_may_read_the_request_id(client):
    response = await client.get("/api/v1/things?url=https://a.example/",
                                headers={"Origin": "chrome-extension://abc"})
    assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]


@pytest.fixture
def json_lines():
    """The gateway's log lines as the JSON format writes them (kept apart from pytest's)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("gateway")
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)


async def test_log_lines_of_a_request_carry_its_id(aiohttp_client, gateway_settings, json_lines):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings = Settings(database_url=f"postgresql://postgres@127.0.0.1:{closed}/none")
    client = await aiohttp_client(create_app(settings, gateway_settings))
    response = await client.get("/api/v1/me", headers={
        "Authorization": "Bearer fl_0123456789abcdef", "X-Request-Id": "trace-42"})
    assert response.status == 503, await response.text()
    assert response.headers["X-Request-Id"] == "trace-42"
    logging.getLogger("gateway.test").warning("outside any request")

    lines = json_lines()
    [during] = [line for line in lines if line["message"].startswith("database unavailable")]
    assert during["request_id"] == "trace-42"
    assert during["level"] == "WARNING" and during["logger"] == "gateway.middlewares"
    [outside] = [line for line in lines if line["message"] == "outside any request"]
    assert "request_id" not in outside
    assert current_request_id.get() is None  # the request's id did not leak past it


async def test_an_unparsable_request_is_logged_with_the_id_it_is_answered_with(
    client, json_lines
):
    unparsable = await exchange(client.host, client.port, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n")
    no_colon = await exchange(client.host, client.port, b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
    assert (unparsable.status, no_colon.status) == (501, 400), (unparsable.body, no_colon.body)
    ids = [unparsable.headers["x-request-id"], no_colon.headers["x-request-id"]]
    assert all(NEW_ID.fullmatch(i) for i in ids) and ids[0] != ids[1], ids
    warned = [line for line in json_lines() if line["level"] == "WARNING"]
    assert [(line["request_id"], line["status"]) for line in warned] == [
        (ids[0], 501), (ids[1], 400)], warned
    assert all(line["logger"] == "gateway.server" for line in warned), warned


def record(message: str, *, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.LogRecord("gateway.server", logging.ERROR, __file__, 1, message, None,
                             exc_info)
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_the_fields_a_collector_reads():
    try:
        raise ValueError("broken")
    except ValueError:
        failure = sys.exc_info()
    token = current_request_id.set("req-1")
    try:
        made = record("writes unfinished", exc_info=failure, waiting=3)
        RequestIdFilter().filter(made)
    finally:
        current_request_id.reset(token)
    line = JsonFormatter().format(made)
    assert "\n" not in line
    fields = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"]), fields
    assert {k: fields[k] for k in ("level", "logger", "message", "request_id", "waiting")} == {
        "level": "ERROR", "logger": "gateway.server", "message": "writes unfinished",
        "request_id": "req-1", "waiting": 3}
    assert "ValueError: broken" in fields["exception"]


def test_a_text_line_names_its_request_and_extra_fields():
    made = record("stopped", requests=5)
    made.request_id = "abc"
    line = TextFormatter().format(made)
    assert line.endswith("ERROR gateway.server: stopped requests=5 request_id=abc"), line
    made = record("stopped")
    made.request_id = None
    assert TextFormatter().format(made).endswith("ERROR gateway.server: stopped")


def test_the_log_format_is_a_setting(monkeypatch):
    monkeypatch.setenv("FLATTR_LOG_FORMAT", "JSON")
    monkeypatch.setenv("FLATTR_LOG_LEVEL", "warning")
    settings = Settings()
    assert (settings.log_format, settings.log_level) == ("json", "WARNING")
    monkeypatch.setenv("FLATTR_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()
