"""The `flattr` admin command, end to end on a real database of each backend."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text

from core.db import sync_url
from flattr_cli.main import cli


@pytest.fixture
def flattr(database_url, monkeypatch):
    monkeypatch.setenv("FLATTR_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(cli, ["--json", *args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.stderr
            return json.loads(result.stdout)
        assert result.exit_code != 0, result.stdout
        return json.loads(result.stderr)["error"]

    return run


def test_a_month_through_the_command(flattr):
    flattr("member", "create", "alice", "--email", "alice@example.com", "--password", "s3cret-pw")
    flattr("member", "create", "bob")
    assert flattr("credit", "alice", "10")["giving"] == "10.00"
    assert flattr("credit", "bob", "3")["giving"] == "3.00"
    flattr("budget", "alice", "5")
    flattr("budget", "bob", "2")
    assert flattr("claim", "bob", "Bob.Example", "--verified")["verified"] is True
    made = flattr("flattr", "alice", "https://bob.example/post?utm_source=x#top",
                  "--period", "2026-01")
    assert made["thing"] == "https://bob.example/post"
    assert made["owner"] == "bob" and made["created"] is True
    assert flattr("flattr", "alice", "https://BOB.example/post", "--period", "2026-01")[
        "created"] is False
    flattr("flattr", "bob", "https://elsewhere.example/", "--period", "2026-01")

    summary = flattr("settle", "2026-01")
    assert summary["charged"] == "7.00" and summary["fees"] == "0.70"
    assert summary["to_revenue"] == "4.50" and summary["held"] == "1.80"
    assert flattr("settle", "2026-01")["already_settled"] is True

    assert flattr("balance", "bob") == {
        "handle": "bob", "currency": "EUR", "giving": "1.00", "revenue": "4.50",
        "held_for_you": "0.00", "budget": "2.00",
    }
    statement = flattr("statement", "alice", "2026-01")
    assert (statement["charged"], statement["fee"], statement["status"]) == (
        "5.00", "0.50", "funded")
    assert statement["shares"] == [{
        "thing": "https://bob.example/post", "amount": "4.50", "state": "paid", "to": "bob",
        "resolved_period": None,
    }]
    assert flattr("statement", "bob", "2026-01")["received"] == "4.50"

    assert flattr("transfer", "bob", "0.50")["revenue"] == "4.00"
    assert flattr("check")["ok"] is True


def test_payouts_are_whole_cents_above_the_threshold(flattr, database_url):
    flattr("member", "create", "cleo")
    flattr("member", "create", "dan")
    flattr("credit", "dan", "30")
    flattr("budget", "dan", "13.333334")
    flattr("claim", "cleo", "cleo.example", "--verified")
    flattr("credit", "cleo", "2")
    flattr("budget", "cleo", "2")
    flattr("flattr", "dan", "https://cleo.example/", "--period", "2026-01")
    flattr("flattr", "cleo", "https://dan.example/", "--period", "2026-01")
    flattr("settle", "2026-01")
    assert flattr("balance", "cleo")["revenue"] == "12.000001"

    assert flattr("payout", "request", "cleo", "5", ok=False)["code"] == "below_payout_threshold"
    requested = flattr("payout", "request", "cleo")
    assert requested["amount"] == "12.00" and requested["status"] == "requested"
    assert flattr("balance", "cleo")["revenue"] == "0.000001"
    assert flattr("payout", "failed", str(requested["id"]))["status"] == "failed"
    assert flattr("balance", "cleo")["revenue"] == "12.000001"
    again = flattr("payout", "request", "cleo", "11.999")
    assert again["amount"] == "11.99"
    assert flattr("payout", "paid", str(again["id"]))["status"] == "paid"
    assert flattr("payout", "failed", str(again["id"]), ok=False)["code"] == "invalid_state"
    assert flattr("balance", "cleo")["revenue"] == "0.010001"
    assert flattr("check")["ok"] is True


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["credit", "alice", "1.0000001"], "invalid_amount"),
        (["credit", "alice", "--", "-3"], "invalid_amount"),
        (["credit", "alice", "abc"], "invalid_amount"),
        (["credit", "nobody", "3"], "not_found"),
        (["budget", "alice", "1.99"], "budget_below_minimum"),
        (["flattr", "alice", "chrome://settings"], "invalid_url"),
        (["flattr", "alice", "https://alice.example/mine"], "own_thing"),
        (["flattr", "alice", "not a thing"], "invalid_thing"),
        (["member", "create", "ALICE"], "handle_taken"),
        (["member", "create", "a b"], "invalid_handle"),
        (["link", "alice", "irc:12"], "invalid_identity"),
        (["transfer", "alice", "1"], "insufficient_funds"),
        (["payout", "paid", "999"], "not_found"),
        (["claim", "alice", "https://x.example/"], "invalid_host"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(flattr, args, code):
    flattr("member", "create", "alice")
    flattr("claim", "alice", "alice.example", "--verified")
    before = flattr("balance", "alice")
    assert flattr(*args, ok=False)["code"] == code
    assert flattr("balance", "alice") == before
    assert flattr("check")["ok"] is True


def test_human_output_and_errors_on_stderr(database_url, monkeypatch):
    monkeypatch.setenv("FLATTR_DATABASE_URL", database_url)
    runner = CliRunner()
    made = runner.invoke(cli, ["member", "create", "erin"])
    assert made.exit_code == 0 and "erin" in made.stdout
    refused = runner.invoke(cli, ["budget", "erin", "1"])
    assert refused.exit_code == 1
    assert "budget_below_minimum" in refused.stderr and refused.stdout == ""


def _tamper(database_url: str, *statements: str) -> None:
    """Change the database behind the ledger's back, as a bug or a hand would."""
    engine = create_sync_engine(sync_url(database_url))
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _failed_checks() -> set[str]:
    """`flattr check` exits 1 and names the invariants that failed."""
    report = CliRunner().invoke(cli, ["--json", "check"])
    assert report.exit_code == 1
    return {c["name"] for c in json.loads(report.stdout)["checks"] if not c["holds"]}


def test_check_fails_when_a_cached_balance_is_wrong(flattr, database_url):
    flattr("member", "create", "fred")
    flattr("credit", "fred", "4")
    _tamper(database_url, "UPDATE accounts SET balance_micros = 5000000 WHERE kind = 'giving'")
    assert _failed_checks() == {"cached_balances"}


def test_check_fails_when_a_charge_left_the_giver_twice(flattr, database_url):
    flattr("member", "create", "gina")
    flattr("credit", "gina", "10")
    flattr("budget", "gina", "4")
    flattr("flattr", "gina", "https://h.example/", "--period", "2026-01")
    flattr("settle", "2026-01")
    _tamper(  # a second, balanced charge posting the split never made
        database_url,
        "INSERT INTO postings (transaction_id, account_id, amount_micros) "
        "SELECT t.id, a.id, -1 FROM ledger_transactions t, accounts a "
        "WHERE t.kind = 'settlement.charge' AND a.kind = 'giving' "
        "UNION ALL SELECT t.id, a.id, 1 FROM ledger_transactions t, accounts a "
        "WHERE t.kind = 'settlement.charge' AND a.kind = 'fees'",
        "UPDATE accounts SET balance_micros = balance_micros - 1 WHERE kind = 'giving'",
        "UPDATE accounts SET balance_micros = balance_micros + 1 WHERE kind = 'fees'",
    )
    assert _failed_checks() == {"charges_posted", "fees_match_charges"}


def test_check_fails_when_a_posting_names_no_account(flattr, database_url):
    flattr("member", "create", "hugo")
    flattr("credit", "hugo", "3")
    _tamper(  # postings carry no foreign keys: the check is the guard
        database_url,
        "UPDATE postings SET account_id = 987654 "
        "WHERE account_id = (SELECT id FROM accounts WHERE kind = 'external')",
    )
    assert "postings_reference" in _failed_checks()


def _settled_months(flattr) -> None:
    """January paid to an owner, held, released on a claim; July returned what was held."""
    flattr("member", "create", "ivan")
    flattr("member", "create", "judy")
    flattr("member", "create", "kim")
    flattr("credit", "ivan", "70")
    flattr("budget", "ivan", "60")
    flattr("credit", "judy", "2")
    flattr("budget", "judy", "2")
    flattr("credit", "kim", "2")
    flattr("budget", "kim", "2")
    flattr("claim", "judy", "judy.example", "--verified")
    for handle, thing in [("ivan", "https://judy.example/a"), ("ivan", "https://nobody.example/"),
                          ("ivan", "https://late.example/"), ("judy", "https://late.example/"),
                          ("kim", "https://judy.example/k")]:
        flattr("flattr", handle, thing, "--period", "2026-01")
    flattr("settle", "2026-01")
    flattr("claim", "kim", "late.example", "--verified")  # releases 18 + 1.80 to kim
    flattr("settle", "2026-07")  # returns nobody.example's 18 to ivan
    assert flattr("balance", "judy")["revenue"] == "19.80"
    assert flattr("balance", "kim")["revenue"] == "19.80"
    assert flattr("balance", "ivan")["giving"] == "28.00"
    assert flattr("check")["ok"] is True


def _move_posting(database_url: str, transaction_kind: str, account_kind: str, to_handle: str,
                  to_account_kind: str) -> None:
    """Move a posting of a `transaction_kind` transaction from an `account_kind` account to
    another member's account, moving the cached balances along: every total still adds up."""
    posting = ("(SELECT MAX(p.id) FROM postings p "
               "JOIN ledger_transactions t ON t.id = p.transaction_id "
               "JOIN accounts a ON a.id = p.account_id "
               f"WHERE t.kind = '{transaction_kind}' AND a.kind = '{account_kind}')")
    amount = f"(SELECT amount_micros FROM postings WHERE id = {posting})"
    target = ("(SELECT a.id FROM accounts a JOIN members m ON m.id = a.member_id "
              f"WHERE m.handle_key = '{to_handle}' AND a.kind = '{to_account_kind}')")
    _tamper(
        database_url,
        f"UPDATE accounts SET balance_micros = balance_micros - {amount} "
        f"WHERE id = (SELECT account_id FROM postings WHERE id = {posting})",
        f"UPDATE accounts SET balance_micros = balance_micros + {amount} WHERE id = {target}",
        f"UPDATE postings SET account_id = {target} WHERE id = {posting}",
    )


@pytest.mark.parametrize(
    ("moved", "to", "failed"),
    [
        (("settlement.revenue", "revenue"), ("kim", "revenue"), "revenue_matches_shares"),
        (("release", "revenue"), ("judy", "revenue"), "revenue_matches_shares"),
        (("settlement.return", "giving"), ("kim", "giving"), "returns_match_shares"),
        (("settlement.charge", "fees"), ("kim", "revenue"), "fees_match_charges"),
        (("funding.manual", "giving"), ("judy", "giving"), "external_matches_records"),
    ],
    ids=["paid share", "released share", "return", "fees", "credit"],
)
def test_check_fails_when_a_posting_reached_another_member(flattr, database_url, moved, to,
                                                           failed):
    _settled_months(flattr)
    flattr("credit", "kim", "5")  # the last credit, the one moved
    _move_posting(database_url, *moved, *to)
    assert _failed_checks() == {failed}


def test_check_fails_when_money_came_from_outside_without_a_funding(flattr, database_url):
    _settled_months(flattr)
    paid = flattr("payout", "request", "judy")
    flattr("payout", "paid", str(paid["id"]))
    assert flattr("check")["ok"] is True
    _tamper(  # 1000 EUR into kim's giving, booked as a credit that nobody made
        database_url,
        "INSERT INTO ledger_transactions (key, kind, member_id, created_at) "
        "SELECT 'funding:manual:forged', 'funding.manual', id, CURRENT_TIMESTAMP "
        "FROM members WHERE handle_key = 'kim'",
        "INSERT INTO postings (transaction_id, account_id, amount_micros) "
        "SELECT t.id, a.id, CASE WHEN a.kind = 'external' THEN -1000000000 ELSE 1000000000 END "
        "FROM ledger_transactions t, accounts a LEFT JOIN members m ON m.id = a.member_id "
        "WHERE t.key = 'funding:manual:forged' "
        "AND (a.kind = 'external' OR (a.kind = 'giving' AND m.handle_key = 'kim'))",
        "UPDATE accounts SET balance_micros = balance_micros + "
        "(SELECT SUM(p.amount_micros) FROM postings p JOIN ledger_transactions t "
        "ON t.id = p.transaction_id WHERE t.key = 'funding:manual:forged' "
        "AND p.account_id = accounts.id) "
        "WHERE id IN (SELECT p.account_id FROM postings p JOIN ledger_transactions t "
        "ON t.id = p.transaction_id WHERE t.key = 'funding:manual:forged')",
    )
    assert _failed_checks() == {"external_matches_records", "external_total"}


def test_check_fails_when_a_paid_payout_differs_from_what_left(flattr, database_url):
    _settled_months(flattr)
    paid = flattr("payout", "request", "judy")
    flattr("payout", "paid", str(paid["id"]))
    # 19.80 left through `external`, but the payout says 10 did
    _tamper(database_url, "UPDATE payouts SET amount_micros = 10000000")
    assert _failed_checks() == {"external_matches_records", "external_total"}
