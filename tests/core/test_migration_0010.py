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


def test_0010_keeps_accounts_and_payouts_and_goes_back(fresh_url):
    upgrade(fresh_url, "0009")
    engine = create_sync_engine(sync_url(fresh_url))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO members (id, handle, handle_key, created_at) "
                          "VALUES (1, 'a', 'a', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO accounts (member_id, kind, balance_micros) "
                          "VALUES (1, 'giving', 5), (1, 'revenue', 7)"))
        conn.execute(text("INSERT INTO payouts (member_id, amount_micros, status, created_at) "
                          "VALUES (1, 10000000, 'requested', CURRENT_TIMESTAMP)"))
    engine.dispose()

    upgrade(fresh_url)
    alembic_check(fresh_url)
    engine = create_sync_engine(sync_url(fresh_url))
    with engine.begin() as conn:
        kept = conn.execute(text("SELECT kind, balance_micros FROM accounts "
                                 "WHERE member_id = 1 ORDER BY kind")).all()
        assert [tuple(r) for r in kept] == [("giving", 5), ("revenue", 7)]
        assert conn.execute(text("SELECT status, batch_id FROM payouts")).one() == (
            "requested", None)
        assert conn.execute(text("SELECT COUNT(*) FROM accounts WHERE kind = 'payouts_sent' "
                                 "AND member_id IS NULL")).scalar() == 1
        conn.execute(text("INSERT INTO accounts (member_id, kind, balance_micros) "
                          "VALUES (1, 'debt', -3)"))
    for refused in ("INSERT INTO accounts (member_id, kind, balance_micros) "
                    "VALUES (1, 'fees', 0)",  # a system kind for a member
                    "UPDATE accounts SET balance_micros = 1 WHERE kind = 'debt'",
                    "UPDATE accounts SET balance_micros = -1 WHERE kind = 'giving'",
                    "UPDATE payouts SET status = 'sent'"):  # sent, but in no batch
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(refused))
    engine.dispose()

    command.downgrade(alembic_config(fresh_url), "0009")
    engine = create_sync_engine(sync_url(fresh_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM payouts")).scalar() == "requested"
        assert conn.execute(text("SELECT COUNT(*) FROM accounts WHERE kind IN "
                                 "('debt', 'payouts_sent')")).scalar() == 0
    engine.dispose()
