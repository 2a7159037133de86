"""Engines for the two backends: the embedded SQLite file and PostgreSQL."""

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(plain_url: str) -> str:
    """Turn the URL a user writes (sqlite:///f.db, postgresql://u@h/db) into an async one."""
    if plain_url.startswith("postgres://"):
        plain_url = "postgresql://" + plain_url.removeprefix("postgres://")
    url = make_url(plain_url)
    backend = url.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {plain_url!r}: use sqlite:/// or postgresql://")
    return url.set(drivername=ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def sync_url(plain_url: str) -> str:
    """The same database through a synchronous driver (Alembic offline tooling, tests)."""
    url = make_url(async_url(plain_url))
    driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


def create_engine(plain_url: str, **options: Any) -> AsyncEngine:
    url = make_url(async_url(plain_url))
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url.render_as_string(hide_password=False), **options)
    options.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **options)


def _sqlite_engine(url: str, **options: Any) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options.setdefault("connect_args", {"timeout": 30})
    engine = create_async_engine(url, **options)

    # pysqlite's legacy transaction handling breaks SAVEPOINT and transactional DDL;
    # take BEGIN over ourselves. IMMEDIATE takes the write lock at once, so two writers
    # queue on busy_timeout instead of failing when a reader upgrades to a writer.
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {SQLITE_BEGIN_MODES[mode]}")

    return engine


SQLITE_BEGIN_MODES = {"IMMEDIATE": "IMMEDIATE", "DEFERRED": "DEFERRED"}
READ_ONLY = {"sqlite_begin": "DEFERRED"}  # execution options of a connection that only reads


def is_sqlite(engine_or_connection: Any) -> bool:
    return engine_or_connection.dialect.name == "sqlite"
