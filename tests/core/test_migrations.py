"""Migrations carry data across: 0003 re-keys charges and shares and partitions shares."""

import uuid

import psycopg
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.db import sync_url
from core.migrate import check as alembic_check
from core.migrate import upgrade


@pytest.fixture
def empty_url(backend, request, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("postgres_server_url")
    name = f"flattr_empty_{uuid.uuid4().hex[:10]}"
    libpq = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


SHARE_ROWS = [  # giver, flattr, period, thing, owner, amount, state
    (1, 10, "2026-01", 100, None, 900_000, "held"),
    (1, 11, "2026-01", 101, 2, 900_000, "paid"),
    (2, 12, "2026-02", 100, None, 1_800_000, "held"),
]


def test_0003_keeps_charges_and_shares_of_settled_months(empty_url, backend):
    upgrade(empty_url, "0002")
    engine = create_sync_engine(sync_url(empty_url))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO members (id, handle, handle_key, created_at) VALUES "
                          "(1, 'a', 'a', CURRENT_TIMESTAMP), (2, 'b', 'b', CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO charges (member_id, period, status, flattr_count, budget_micros, "
            "balance_micros, charge_micros, fee_micros, net_micros) VALUES "
            "(1, '2026-01', 'funded', 2, 2000000, 2000000, 2000000, 200000, 1800000), "
            "(2, '2026-02', 'funded', 1, 2000000, 2000000, 2000000, 200000, 1800000)"))
        for row in SHARE_ROWS:
            conn.execute(text(
                "INSERT INTO shares (giver_id, flattr_id, period, thing_id, owner_id, "
                "amount_micros, state) VALUES (:g, :f, :p, :t, :o, :a, :s)"),
                dict(zip("gfptoas", row, strict=True)))
    engine.dispose()

    upgrade(empty_url)
    alembic_check(empty_url)
    engine = create_sync_engine(sync_url(empty_url))
    with engine.connect() as conn:
        shares = conn.execute(text(
            "SELECT giver_id, flattr_id, period, thing_id, owner_id, amount_micros, state "
            "FROM shares ORDER BY flattr_id")).all()
        charged = conn.execute(text("SELECT COUNT(*) FROM charges")).scalar()
        if backend == "postgresql":
            partitions = conn.execute(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent "
                "WHERE p.relname = 'shares' ORDER BY 1")).scalars().all()
            assert partitions == ["shares_2026_01", "shares_2026_02"]
    engine.dispose()
    assert [tuple(r) for r in shares] == SHARE_ROWS
    assert charged == 2


def test_0005_gives_web_pages_the_owners_their_claims_give(empty_url):
    """Before 0005 a bot's `author` could own a web page, and a `/blog` claim `/blogger`."""
    upgrade(empty_url, "0004")
    engine = create_sync_engine(sync_url(empty_url))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO members (id, handle, handle_key, created_at) VALUES "
                          "(1, 'a', 'a', CURRENT_TIMESTAMP), (2, 'b', 'b', CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO claims (member_id, host, path_prefix, proof_token, verified_at, "
            "created_at) VALUES (1, 'x.example', '/blog', 't', CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO things (id, key, kind, url, host, path, author_identity, owner_id, "
            "created_at) VALUES "
            "(1, 'https://x.example/blog/1', 'url', 'https://x.example/blog/1', 'x.example', "
            "'/blog/1', NULL, 1, CURRENT_TIMESTAMP), "
            "(2, 'https://x.example/blogger', 'url', 'https://x.example/blogger', 'x.example', "
            "'/blogger', NULL, 1, CURRENT_TIMESTAMP), "
            "(3, 'https://y.example/', 'url', 'https://y.example/', 'y.example', '/', "
            "'telegram:7', 2, CURRENT_TIMESTAMP), "
            "(4, 'telegram:-1/2', 'telegram', NULL, NULL, NULL, 'telegram:7', 2, "
            "CURRENT_TIMESTAMP)"))
    engine.dispose()

    upgrade(empty_url)
    engine = create_sync_engine(sync_url(empty_url))
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT id, author_identity, owner_id FROM things ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        (1, None, 1), (2, None, None), (3, None, None), (4, "telegram:7", 2),
    ]
