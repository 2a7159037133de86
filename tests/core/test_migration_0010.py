"""Migration 0010 keeps accounts and payouts as they were, and can be undone."""

import uuid

import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from core.db import sync_url
from core.migrate import alembic_config, upgrade
from core.migrate import check as alembic_check


@pytest.fixture
def fresh_url(backend, request, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    server = request.getfixturevalue("postgres_server_url")
    name = f"flattr_m10_{uuid.uuid4().hex[:10]}"
    libpq = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def sql(url: str, *statements: str) -> list:
    """Run the statements in one transaction; the rows of the last."""
    engine = create_sync_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            for statement in statements:
                result = conn.execute(text(statement))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def refused(url: str, *statements: str) -> None:
    """Each statement breaks a constraint of the schema."""
    for statement in statements:
        with pytest.raises(IntegrityError):
            sql(url, statement)


def upgraded_from(url: str, revision: str, *statements: str) -> None:
    """The rows the statements make at `revision`, then every migration up to the head,
    whose schema must be the models'."""
    upgrade(url, revision)
    sql(url, *statements)
    upgrade(url)
    alembic_check(url)


def test_0010_keeps_accounts_and_payouts_and_goes_back(fresh_url):
    upgraded_from(
        fresh_url, "0009",
        "INSERT INTO members (id, handle, handle_key, created_at) "
        "VALUES (1, 'a', 'a', CURRENT_TIMESTAMP)",
        "INSERT INTO accounts (member_id, kind, balance_micros) "
        "VALUES (1, 'giving', 5), (1, 'revenue', 7)",
        "INSERT INTO payouts (member_id, amount_micros, status, created_at) "
        "VALUES (1, 10000000, 'requested', CURRENT_TIMESTAMP)")
    assert sql(fresh_url, "SELECT kind, balance_micros FROM accounts "
               "WHERE member_id = 1 ORDER BY kind") == [("giving", 5), ("revenue", 7)]
    assert sql(fresh_url, "SELECT status, batch_id FROM payouts") == [("requested", None)]
    assert sql(fresh_url, "SELECT COUNT(*) FROM accounts WHERE kind = 'payouts_sent' "
               "AND member_id IS NULL") == [(1,)]
    sql(fresh_url, "INSERT INTO accounts (member_id, kind, balance_micros) "
        "VALUES (1, 'debt', -3)")
    refused(fresh_url,
            "INSERT INTO accounts (member_id, kind, balance_micros) "
            "VALUES (1, 'fees', 0)",  # a system kind for a member
            "UPDATE accounts SET balance_micros = 1 WHERE kind = 'debt'",
            "UPDATE accounts SET balance_micros = -1 WHERE kind = 'giving'",
            "UPDATE payouts SET status = 'sent'")  # sent, but in no batch

    # Money history the 0009 schema has no place for: a card checkout, a reversal.
    sql(fresh_url, "INSERT INTO stripe_checkouts (session_id, member_id, amount_micros, "
        "fee_micros, status, created_at) "
        "VALUES ('cs_1', 1, 10000000, 410000, 'open', CURRENT_TIMESTAMP)")
    with pytest.raises(RuntimeError, match="stripe_checkouts"):
        command.downgrade(alembic_config(fresh_url), "0009")
    sql(fresh_url, "DELETE FROM stripe_checkouts",
        "INSERT INTO fundings (id, member_id, source, amount_micros, transaction_id, "
        "created_at) VALUES (1, 1, 'stripe', 10000000, 1, CURRENT_TIMESTAMP)",
        "INSERT INTO funding_reversals (funding_id, member_id, kind, reference, amount_micros, "
        "debt_micros, transaction_id, created_at) "
        "VALUES (1, 1, 'refund', 'evt_1', 3000000, 0, 2, CURRENT_TIMESTAMP)")
    with pytest.raises(RuntimeError, match="funding_reversals"):
        command.downgrade(alembic_config(fresh_url), "0009")
    assert sql(fresh_url, "SELECT reference FROM funding_reversals") == [("evt_1",)]
    sql(fresh_url, "DELETE FROM funding_reversals", "DELETE FROM fundings")

    command.downgrade(alembic_config(fresh_url), "0009")
    assert sql(fresh_url, "SELECT status FROM payouts") == [("requested",)]
    assert sql(fresh_url, "SELECT COUNT(*) FROM accounts WHERE kind IN "
               "('debt', 'payouts_sent')") == [(0,)]


def test_0011_keeps_what_was_refunded_and_refuses_to_drop_a_dispute_won(fresh_url):
    upgraded_from(
        fresh_url, "0010",
        "INSERT INTO members (id, handle, handle_key, created_at) "
        "VALUES (1, 'a', 'a', CURRENT_TIMESTAMP)",
        "INSERT INTO fundings (id, member_id, source, amount_micros, transaction_id, "
        "created_at) VALUES (1, 1, 'stripe', 10000000, 1, CURRENT_TIMESTAMP)",
        "INSERT INTO funding_reversals (funding_id, member_id, kind, reference, amount_micros, "
        "debt_micros, transaction_id, created_at) "
        "VALUES (1, 1, 'refund', 'evt_1', 3000000, 0, 2, CURRENT_TIMESTAMP), "
        "(1, 1, 'dispute', 'dp_1', 2000000, 0, 3, CURRENT_TIMESTAMP)",
        "INSERT INTO stripe_checkouts (session_id, member_id, amount_micros, fee_micros, "
        "status, funding_id, created_at) "
        "VALUES ('cs_1', 1, 10000000, 410000, 'paid', 1, CURRENT_TIMESTAMP), "
        "('cs_2', 1, 10000000, 410000, 'open', NULL, CURRENT_TIMESTAMP)")
    assert sql(fresh_url, "SELECT session_id, refunded_micros FROM stripe_checkouts "
               "ORDER BY session_id") == [("cs_1", 3000000), ("cs_2", 0)]
    sql(fresh_url, "UPDATE funding_reversals SET reinstated_transaction_id = 4, "
        "reinstated_at = CURRENT_TIMESTAMP WHERE kind = 'dispute'")
    refused(fresh_url,
            "UPDATE funding_reversals SET reinstated_transaction_id = 5, "
            "reinstated_at = CURRENT_TIMESTAMP WHERE kind = 'refund'",  # only disputes
            "UPDATE funding_reversals SET reinstated_at = NULL",
            "UPDATE stripe_checkouts SET refunded_micros = 10000001")  # over the amount

    with pytest.raises(RuntimeError, match="disputes won"):
        command.downgrade(alembic_config(fresh_url), "0010")
    assert sql(fresh_url, "SELECT reference FROM funding_reversals "
               "WHERE reinstated_transaction_id IS NOT NULL") == [("dp_1",)]
    sql(fresh_url, "UPDATE funding_reversals SET reinstated_transaction_id = NULL, "
        "reinstated_at = NULL")
    command.downgrade(alembic_config(fresh_url), "0010")
    assert sql(fresh_url, "SELECT COUNT(*) FROM funding_reversals") == [(2,)]
