"""Upgrades started at once (the compose `migrate` service and every gateway's start) on a
fresh PostgreSQL database run one after the other: each succeeds, the schema ends at head."""

import subprocess
import sys
import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from core.migrate import head_revisions

UPGRADES_AT_ONCE = 4
UPGRADE_WITHIN_SECONDS = 120
# A process upgrading as `flattr db upgrade` does, with Alembic's lines shown.
UPGRADE = ("import logging, sys; logging.basicConfig(level=logging.INFO); "
           "from core.migrate import upgrade; upgrade(sys.argv[1])")


@pytest.fixture
def fresh_postgres_url(postgres_server_url):
    name = f"flattr_fresh_{uuid.uuid4().hex[:10]}"
    libpq = make_url(postgres_server_url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_upgrades_started_at_once_all_succeed_one_after_the_other(fresh_postgres_url):
    upgrades = [subprocess.Popen([sys.executable, "-c", UPGRADE, fresh_postgres_url], text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                for _ in range(UPGRADES_AT_ONCE)]
    outputs = [upgrade.communicate(timeout=UPGRADE_WITHIN_SECONDS)[0] for upgrade in upgrades]
    assert [upgrade.returncode for upgrade in upgrades] == [0] * UPGRADES_AT_ONCE, outputs
    # One ran the migrations; the others, let in after it, found nothing to do.
    ran = [output for output in outputs if "Running upgrade  -> 0001" in output]
    assert len(ran) == 1, outputs
    libpq = make_url(fresh_postgres_url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    with psycopg.connect(libpq) as conn:
        versions = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    assert versions == set(head_revisions())
