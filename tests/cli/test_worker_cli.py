"""`flattr worker --once` and `flattr outbox`, end to end on a real database of each backend
(and a real SMTP server on loopback)."""

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from core import notifications, outbox
from core.db import create_engine
from flattr_cli.main import cli
from smtp_server import smtp_server


@pytest.fixture
def flattr(database_url, monkeypatch):
    monkeypatch.setenv("FLATTR_DATABASE_URL", database_url)
    monkeypatch.setenv("FLATTR_PUBLIC_URL", "https://flattr.test")
    runner = CliRunner()

    def run(*args: str, exit_code: int = 0):
        result = runner.invoke(cli, ["--json", *args], catch_exceptions=False)
        assert result.exit_code == exit_code, result.stderr
        return (json.loads(result.stdout) if exit_code == 0 else None), result.stderr

    return run


def with_email(database_url: str, handle_id: int) -> None:
    async def turn_on() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as conn:
                await notifications.choose(conn, handle_id, {"email": True})
        finally:
            await engine.dispose()

    asyncio.run(turn_on())


def a_month(flattr) -> int:
    ann = flattr("member", "create", "ann", "--email", "ann@example.org")[0]["id"]
    flattr("member", "create", "bob")
    flattr("credit", "ann", "10")
    flattr("budget", "ann", "5")
    flattr("claim", "bob", "bob.example", "--verified")
    flattr("flattr", "ann", "https://bob.example/post", "--period", "2026-11")
    return ann


def test_worker_once_settles_a_month_when_it_may_be(flattr):
    a_month(flattr)
    done, log = flattr("worker", "--once", "--now", "2026-12-01T00:00:30Z")
    assert done == {"now": "2026-12-01T00:00:30+00:00", "currency": "EUR", "done": []}
    assert log == ""

    done, log = flattr("worker", "--once", "--now", "2026-12-01T01:01:00+01:00")
    assert done["now"] == "2026-12-01T00:01:00+00:00"
    [settled] = done["done"]
    assert settled["work"] == "settle" and settled["period"] == "2026-11"
    assert (settled["stages_run"], settled["charged"], settled["fees"]) == (6, "5.00", "0.50")
    assert settled["summaries"] == 2 and settled["failed"] is False
    assert "INFO flattr.worker: settled 2026-11: 6 stages, 1 giver (0 unfunded), €5.00 charged" \
        in log
    assert flattr("worker", "--once", "--now", "2026-12-01T00:02:00Z")[0]["done"] == []


def test_worker_logs_as_the_log_settings_say(flattr, database_url, monkeypatch):
    a_month(flattr)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    env.update({"FLATTR_DATABASE_URL": database_url, "FLATTR_PUBLIC_URL": "https://flattr.test",
                "FLATTR_LOG_FORMAT": "json"})
    done = subprocess.run([str(Path(sys.executable).parent / "flattr"), "--json", "worker",
                           "--once", "--now", "2026-12-01T00:01:00Z"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"][0]["work"] == "settle"
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # each one JSON
    [settled] = [line for line in lines if line["message"].startswith("settled 2026-11")]
    assert (settled["level"], settled["logger"]) == ("INFO", "flattr.worker"), settled
    # The level too: warnings only, and the next month settled without any.
    monkeypatch.setenv("FLATTR_LOG_LEVEL", "warning")
    done, log = flattr("worker", "--once", "--now", "2027-01-01T00:01:00Z")
    assert done["done"][0]["period"] == "2026-12" and log == ""


@pytest.mark.parametrize(("args", "said"), [
    (["--once", "--now", "yesterday"], "'yesterday' is not an instant like"),
    (["--once", "--now", "2026-12-01T00:00:00"], "has no time zone: end it with Z"),
    (["--now", "2026-12-01T00:00:00Z"], "--now goes with --once"),
    (["--once", "--metrics-port", "9100"], "--metrics-port is for the long-running worker"),
    (["--interval", "0"], "Invalid value for '--interval'"),
])
def test_worker_refuses_bad_options_clearly(flattr, args, said):
    _, error = flattr("worker", *args, exit_code=2)
    assert said in error


def test_outbox_lists_dead_letters_and_an_admin_retries_one(flattr, database_url):
    with_email(database_url, a_month(flattr))
    with smtp_server() as (mailbox, url):
        mailbox.refuse = "451 4.3.0 try later"
        at = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
        for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
            with pytest.MonkeyPatch.context() as env:
                env.setenv("FLATTR_SMTP_URL", url)
                done, _ = flattr("worker", "--once", "--now", at.isoformat())
            assert done["done"][-1]["work"] == "email"
            at += outbox.backoff(attempt)
        everything, _ = flattr("outbox")
        assert everything["count"] == 1
        dead, _ = flattr("outbox", "--state", "dead")
        [letter] = dead["deliveries"]
        assert (letter["handle"], letter["channel"], letter["address"], letter["kind"],
                letter["period"], letter["attempts"]) == (
            "ann", "email", "ann@example.org", "summary", "2026-11", outbox.MAX_ATTEMPTS)
        assert "451" in letter["last_error"]
        assert flattr("outbox", "--state", "pending")[0] == {
            "state": "pending", "count": 0, "deliveries": []}

        again, _ = flattr("outbox", "retry", str(letter["id"]))
        assert (again["state"], again["attempts"]) == ("pending", 0)
        mailbox.refuse = None
        with pytest.MonkeyPatch.context() as env:
            env.setenv("FLATTR_SMTP_URL", url)
            done, _ = flattr("worker", "--once", "--now",
                             (datetime.now(UTC) + timedelta(seconds=1)).isoformat())
        assert done["done"][-1]["sent"] == 1
        assert mailbox.received[0]["To"] == "ann@example.org"
        text, _ = mailbox.bodies(mailbox.received[0])
        assert "https://flattr.test/statements/2026-11" in text
    assert flattr("outbox", "--state", "sent")[0]["count"] == 1
    _, error = flattr("outbox", "retry", str(letter["id"]), exit_code=1)
    assert json.loads(error)["error"]["code"] == "invalid_state"  # delivered already


def test_outbox_errors_are_clear(flattr):
    _, error = flattr("outbox", "retry", "999", exit_code=1)
    assert json.loads(error)["error"] == {"code": "not_found",
                                          "message": "no outbox message with id 999"}
    _, error = flattr("outbox", "--state", "lost", exit_code=2)
    assert "'lost' is not one of 'pending', 'leased', 'sent', 'dead', 'unreachable'" in error
    _, error = flattr("outbox", "retry", "many", exit_code=2)
    assert "'many' is not a valid integer" in error
