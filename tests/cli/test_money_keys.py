"""The `flattr` commands that move money take an idempotency key and print the one they used."""

import json

import pytest
from click.testing import CliRunner

from flattr_cli.main import cli


@pytest.fixture
def command(database_url, monkeypatch):
    """Run `flattr ARGS` and return its exit code, standard output and error output."""
    monkeypatch.setenv("FLATTR_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        done = runner.invoke(cli, list(args), catch_exceptions=False)
        return done.exit_code, done.stdout, done.stderr

    return run


def answer(command, *args: str) -> dict:
    code, out, err = command("--json", *args)
    assert code == 0, err
    return json.loads(out)


def test_a_credit_retried_with_its_key_credits_once(command):
    answer(command, "member", "create", "alice")
    first = answer(command, "credit", "alice", "5", "--key", "wire-2026-001")
    assert first["key"] == "wire-2026-001" and first["replayed"] is False
    again = answer(command, "credit", "alice", "5", "--key", "wire-2026-001")
    assert again["replayed"] is True and again["giving"] == "5.00"
    assert answer(command, "balance", "alice")["giving"] == "5.00"
    other = answer(command, "credit", "alice", "5")
    assert other["replayed"] is False and other["giving"] == "10.00"
    assert len(other["key"]) >= 16 and other["key"] != "wire-2026-001"
    assert answer(command, "credit", "alice", "5", "--key", other["key"])["giving"] == "10.00"
    refused = command("--json", "credit", "alice", "6", "--key", other["key"])
    assert refused[0] == 1 and json.loads(refused[2])["error"]["code"] == "idempotency_conflict"


def test_the_table_shows_the_key_an_operator_retries_with(command):
    command("member", "create", "bob")
    code, out, _ = command("credit", "bob", "3")
    assert code == 0
    key = next(line.split()[-2] for line in out.splitlines() if " key " in line)
    assert len(key) == 32
    code, out, _ = command("credit", "bob", "3", "--key", key)
    assert code == 0 and "True" in out
    assert answer(command, "balance", "bob")["giving"] == "3.00"


def test_transfers_and_payout_requests_retried_with_their_key_move_money_once(command):
    answer(command, "member", "create", "cleo")
    answer(command, "member", "create", "dan")
    answer(command, "credit", "dan", "30")
    answer(command, "budget", "dan", "24")
    answer(command, "claim", "cleo", "cleo.example", "--verified")
    answer(command, "credit", "cleo", "2")
    answer(command, "budget", "cleo", "2")
    answer(command, "flattr", "dan", "https://cleo.example/", "--period", "2026-01")
    answer(command, "flattr", "cleo", "https://dan.example/", "--period", "2026-01")
    answer(command, "settle", "2026-01")
    assert answer(command, "balance", "cleo")["revenue"] == "21.60"

    moved = answer(command, "transfer", "cleo", "1", "--key", "t-1")
    assert moved["key"] == "t-1" and moved["revenue"] == "20.60"
    assert answer(command, "transfer", "cleo", "1", "--key", "t-1")["replayed"] is True
    assert answer(command, "balance", "cleo")["revenue"] == "20.60"

    requested = answer(command, "payout", "request", "cleo", "10", "--key", "p-1")
    assert requested["key"] == "p-1" and requested["replayed"] is False
    again = answer(command, "payout", "request", "cleo", "10", "--key", "p-1")
    assert again == {**requested, "replayed": True}
    assert answer(command, "balance", "cleo")["revenue"] == "10.60"
    assert answer(command, "payout", "list", "cleo")["count"] == 1
    fresh = answer(command, "payout", "request", "cleo")
    assert fresh["key"] != "p-1" and fresh["amount"] == "10.60"

    assert answer(command, "payout", "paid", str(requested["id"]))["replayed"] is False
    assert answer(command, "payout", "paid", str(requested["id"]))["replayed"] is True
    assert answer(command, "check")["ok"] is True
