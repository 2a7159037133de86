"""`flattr payout account|batch|confirm|reject`: SEPA payouts end to end, on each backend."""

import json
from pathlib import Path

import pytest
import sepaxml
from click.testing import CliRunner
from lxml import etree

from flattr_cli.main import cli

PLATFORM = {"FLATTR_SEPA_NAME": "Flattr Platform", "FLATTR_SEPA_IBAN": "DE89370400440532013000"}


@pytest.fixture
def command(database_url):
    def run(*args: str, ok: bool = True, sepa: bool = True, exit_code: int = 1) -> dict:
        env = {"FLATTR_DATABASE_URL": database_url, **(PLATFORM if sepa else {})}
        result = CliRunner().invoke(cli, ["--json", *args], env=env, catch_exceptions=False)
        assert result.exit_code == (0 if ok else exit_code), (result.stdout, result.stderr)
        return json.loads(result.stdout) if ok else json.loads(result.stderr)["error"]

    return run


def creators_with_revenue(command, *handles: str) -> None:
    """Each creator gets 18.00 of revenue from a settled January, and asks for it."""
    for handle in handles:
        command("member", "create", handle)
        command("member", "create", f"{handle}-fan")
        command("credit", f"{handle}-fan", "20")
        command("budget", f"{handle}-fan", "20")
        command("credit", handle, "2")
        command("budget", handle, "2")
        command("claim", handle, f"{handle}.example", "--verified")
        command("flattr", f"{handle}-fan", f"https://{handle}.example/", "--period", "2026-01")
        command("flattr", handle, "https://else.example/", "--period", "2026-01")
    command("settle", "2026-01")
    for handle in handles:
        assert command("payout", "request", handle)["amount"] == "18.00"


def test_a_batch_is_sent_once_then_confirmed(command, tmp_path: Path):
    creators_with_revenue(command, "hal", "ivy")
    refused = command("payout", "account", "hal", "DE89370400440532013001", "Hal", ok=False)
    assert refused["code"] == "invalid_bank_account"
    shown = command("payout", "account", "hal", "fr14 2004 1010 0505 0001 3m02 606", "Hal Doe")
    assert shown["iban"] == "FR1420041010050500013M02606"

    out = tmp_path / "batch.xml"
    sent = command("payout", "batch", "--out", str(out))
    assert (sent["count"], sent["total"], sent["file"]) == (1, "18.00", str(out))
    assert len(sent["waiting_for_an_iban"]) == 1  # ivy gave no IBAN
    schema = etree.XMLSchema(etree.parse(str(
        Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd")))
    assert schema.validate(etree.parse(str(out)))
    again = command("payout", "batch", "--out", str(tmp_path / "again.xml"))
    assert again["count"] == 0 and not (tmp_path / "again.xml").exists()

    confirmed = command("payout", "confirm", str(out))
    assert confirmed["changed"] == 1 and confirmed["payouts"][0]["status"] == "paid"
    assert command("payout", "confirm", str(out))["changed"] == 0
    rejected = command("payout", "reject", str(out))  # a paid payout stays paid
    assert rejected["changed"] == 0 and rejected["payouts"][0]["status"] == "paid"
    assert command("balance", "hal")["revenue"] == "0.00"
    assert command("check")["ok"] is True


def test_a_payout_the_bank_refused_goes_back_to_revenue(command, tmp_path: Path):
    creators_with_revenue(command, "hal", "ivy")
    command("payout", "account", "hal", "NL91ABNA0417164300", "Hal", "--bic", "ABNANL2A")
    command("payout", "account", "ivy", "DE75512108001245126199", "Ivy")
    out = tmp_path / "batch.xml"
    sent = command("payout", "batch", "--out", str(out))
    assert sent["count"] == 2
    ivy_payout = next(p["id"] for p in command("payout", "list", "ivy")["payouts"])
    rejected = command("payout", "reject", str(out), "--payout", str(ivy_payout))
    assert [p["status"] for p in rejected["payouts"]] == ["failed"]
    confirmed = command("payout", "confirm", str(out))  # the rest of the file was paid
    assert sorted(p["status"] for p in confirmed["payouts"]) == ["failed", "paid"]
    assert command("balance", "ivy")["revenue"] == "18.00"
    assert command("balance", "hal")["revenue"] == "0.00"
    assert command("check")["ok"] is True


def test_without_the_platforms_account_nothing_is_sent(command, tmp_path: Path):
    creators_with_revenue(command, "hal")
    command("payout", "account", "hal", "NL91ABNA0417164300", "Hal")
    refused = command("payout", "batch", "--out", str(tmp_path / "b.xml"), ok=False, sepa=False)
    assert refused["code"] == "invalid_state"
    assert command("payout", "list", "hal")["payouts"][0]["status"] == "requested"
    forged = tmp_path / "forged.xml"
    forged.write_bytes(b"<Document/>")
    assert command("payout", "confirm", str(forged), ok=False)["code"] == "invalid_state"


def test_a_batch_refuses_to_overwrite_a_file_unless_forced(command, tmp_path: Path):
    creators_with_revenue(command, "hal")
    command("payout", "account", "hal", "NL91ABNA0417164300", "Hål Müller")
    files = tmp_path / "files"
    files.mkdir()
    out = files / "batch.xml"
    out.write_bytes(b"last month's file")
    refused = command("payout", "batch", "--out", str(out), ok=False, exit_code=2)
    assert refused["code"] == "file_exists" and "--force" in refused["message"]
    assert out.read_bytes() == b"last month's file"
    assert [p.name for p in files.iterdir()] == ["batch.xml"]
    assert command("payout", "list", "hal")["payouts"][0]["status"] == "requested"
    assert command("payout", "export", "1", ok=False)["code"] == "not_found"  # no batch made

    sent = command("payout", "batch", "--out", str(out), "--force")
    assert sent["count"] == 1 and command("payout", "list", "hal")["payouts"][0]["status"] == (
        "sent")
    assert b"<Nm>Hal Muller</Nm>" in out.read_bytes()  # as sepaxml spells it for banks
    assert command("check")["ok"] is True


def test_a_batch_whose_directory_is_missing_marks_nothing(command, tmp_path: Path):
    creators_with_revenue(command, "hal")
    command("payout", "account", "hal", "NL91ABNA0417164300", "Hal")
    refused = command("payout", "batch", "--out", str(tmp_path / "no" / "b.xml"), ok=False)
    assert refused["code"] == "cannot_write_file"
    assert command("payout", "list", "hal")["payouts"][0]["status"] == "requested"
    assert command("payout", "export", "1", ok=False)["code"] == "not_found"


def test_a_sent_batch_is_exported_again_byte_for_byte_and_nothing_moves(
    command, tmp_path: Path, monkeypatch,
):
    creators_with_revenue(command, "hal", "ivy")
    command("payout", "account", "hal", "NL91ABNA0417164300", "Hål Müller", "--bic", "ABNANL2A")
    command("payout", "account", "ivy", "DE75512108001245126199", "Ivy")
    files = tmp_path / "files"
    files.mkdir()
    monkeypatch.chdir(files)
    sent = command("payout", "batch")  # to ./<message id>.xml
    first = files / f"{sent['message_id']}.xml"
    assert sent["file"] == first.name
    original = first.read_bytes()
    before = (command("payout", "list")["payouts"], command("balance", "hal"))

    # Its default name is the file there already: refused, then forced.
    refused = command("payout", "export", str(sent["batch_id"]), ok=False, exit_code=2)
    assert refused["code"] == "file_exists"
    again = command("payout", "export", str(sent["batch_id"]), "--out", "again.xml")
    assert (again["message_id"], again["count"], again["total"]) == (
        sent["message_id"], 2, "36.00")
    by_message = command("payout", "export", sent["message_id"], "--out", "by-message.xml")
    assert by_message["batch_id"] == sent["batch_id"]
    forced = command("payout", "export", str(sent["batch_id"]), "--force")
    assert forced["file"] == first.name
    for copy in ("again.xml", "by-message.xml", first.name):
        assert (files / copy).read_bytes() == original
    assert (command("payout", "list")["payouts"], command("balance", "hal")) == before
    assert sorted(p.name for p in files.iterdir()) == sorted(
        ["again.xml", "by-message.xml", first.name])
    for unknown in ("99", "FLATTR-none", "0", "99999999999999999999"):
        assert command("payout", "export", unknown, "--out", "x.xml", ok=False)[
            "code"] == "not_found"
    assert not (files / "x.xml").exists()

    confirmed = command("payout", "confirm", "again.xml")  # the bank takes the copy as sent
    assert confirmed["changed"] == 2
    assert command("check")["ok"] is True


def test_an_admin_cannot_mark_a_payout_the_bank_has(command, tmp_path: Path):
    creators_with_revenue(command, "hal", "ivy")
    command("payout", "account", "hal", "NL91ABNA0417164300", "Hal")
    out = tmp_path / "batch.xml"
    command("payout", "batch", "--out", str(out))
    hal_payout, ivy_payout = (command("payout", "list", h)["payouts"][0]["id"]
                              for h in ("hal", "ivy"))
    for outcome in ("paid", "failed"):
        refused = command("payout", outcome, str(hal_payout), ok=False, exit_code=2)
        assert refused["code"] == "invalid_state"
        assert "payout confirm|reject FILE" in refused["message"]
    assert command("payout", "list", "hal")["payouts"][0]["status"] == "sent"
    assert command("balance", "hal")["revenue"] == "0.00"
    assert command("check")["ok"] is True

    marked = command("payout", "failed", str(ivy_payout))  # requested, not sent: the admin's
    assert marked["status"] == "failed" and command("balance", "ivy")["revenue"] == "18.00"
    rejected = command("payout", "reject", str(out))
    assert [p["status"] for p in rejected["payouts"]] == ["failed"]
    assert command("balance", "hal")["revenue"] == "18.00"
    assert command("check")["ok"] is True
