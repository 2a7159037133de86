"""Databases for the tests: every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL is found in this order: FLATTR_TEST_DATABASE_URL; the server on 127.0.0.1:5432;
a throwaway server started by pytest-postgresql from the installed binaries. Only then do
the PostgreSQL tests skip, and under CI=true that skip is a failure.
"""

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_engine
from core.migrate import upgrade
from core.settings import Settings
from support import unavailable

# One template per test session, so that sessions running side by side do not collide.
TEMPLATE_DATABASE = f"flattr_test_template_{os.getpid()}"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
HOW_TO_ENABLE = (
    "no PostgreSQL for the tests: set FLATTR_TEST_DATABASE_URL=postgresql://user@host/db, "
    "start one on 127.0.0.1:5432, or install PostgreSQL's binaries (pg_ctl) for a private one"
)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url(request: pytest.FixtureRequest) -> str:
    explicit = os.environ.get("FLATTR_TEST_DATABASE_URL")
    if explicit:
        if not _answers(explicit):
            unavailable(f"FLATTR_TEST_DATABASE_URL={explicit} does not answer")
        return explicit
    if _answers(LOCAL_POSTGRES):
        return LOCAL_POSTGRES
    try:
        process = request.getfixturevalue("postgresql_proc")
    except Exception as error:  # no binaries, or they refuse to run here
        unavailable(f"{HOW_TO_ENABLE} ({error})")
    return f"postgresql://{process.user}@{process.host}:{process.port}/postgres"


@pytest.fixture(scope="session")
def postgres_template(postgres_server_url: str) -> Iterator[str]:
    """A database migrated once; each test gets a copy of it (CREATE DATABASE … TEMPLATE)."""
    with psycopg.connect(_libpq(postgres_server_url), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {TEMPLATE_DATABASE}")
    url = make_url(postgres_server_url).set(database=TEMPLATE_DATABASE)
    template_url = url.render_as_string(hide_password=False)
    upgrade(template_url)
    yield template_url
    with psycopg.connect(_libpq(postgres_server_url), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DATABASE} WITH (FORCE)")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "flattr.db"
    upgrade(f"sqlite:///{path}")
    return path


class Databases:
    """Makes fresh, migrated databases of one backend."""

    def __init__(self, backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.backend = backend
        self.request = request
        self.tmp_path = tmp_path
        self.created: list[str] = []

    def new_url(self) -> str:
        if self.backend == "sqlite":
            path = self.tmp_path / f"flattr-{uuid.uuid4().hex[:8]}.db"
            shutil.copy(self.request.getfixturevalue("sqlite_template"), path)
            return f"sqlite:///{path}"
        template = make_url(self.request.getfixturevalue("postgres_template"))
        name = f"flattr_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_libpq(self.request.getfixturevalue("postgres_server_url")),
                             autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE {template.database}")
        self.created.append(name)
        return template.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        with psycopg.connect(_libpq(self.request.getfixturevalue("postgres_server_url")),
                             autocommit=True) as admin:
            for name in self.created:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite" and request.node.get_closest_marker("postgres_only"):
        pytest.skip("this test exercises PostgreSQL only")
    return request.param


@pytest.fixture
def databases(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    made = Databases(backend, request, tmp_path)
    yield made
    made.drop_all()


@pytest.fixture
def database_url(databases: Databases) -> str:
    return databases.new_url()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, redis_url=None)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(database_url)
    yield made
    await made.dispose()


def run(coroutine):
    """Run a coroutine from a synchronous test (hypothesis examples, CLI tests)."""
    return asyncio.run(coroutine)
