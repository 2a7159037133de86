"""Schema migrations (Alembic), run by `flattr db upgrade`, `flattr serve` at each start and
the test fixtures.

On PostgreSQL an upgrade holds a session advisory lock, so that upgrades started at once
(the compose `migrate` service and gateways starting) run one after the other, the later
ones finding nothing to do, instead of racing to create the same tables.
SQLite needs none: its writers already take turns on the file's lock.
"""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import NullPool

from core.db import async_url, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps
# One key ("FlattM"); core.locks' and the worker's locks are other keys or two-key.
UPGRADE_LOCK = 0x466C6174744D


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("database_url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    if make_url(async_url(database_url)).get_backend_name() != "postgresql":
        command.upgrade(alembic_config(database_url), revision)
        return
    asyncio.run(_upgrade_holding_lock(database_url, revision))


async def _upgrade_holding_lock(database_url: str, revision: str) -> None:
    """Alembic's upgrade on a thread of its own (env.py runs its own event loop), while a
    connection of this loop holds the lock; a process that dies lets go of it with its
    connection."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": UPGRADE_LOCK})
            try:
                await asyncio.to_thread(command.upgrade, alembic_config(database_url), revision)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": UPGRADE_LOCK})
    finally:
        await engine.dispose()


def check(database_url: str) -> None:
    """Fail when the models and the migrations have drifted apart (`alembic check`)."""
    command.check(alembic_config(database_url))


def head_revisions() -> frozenset[str]:
    """The revisions a fully migrated database is at (read from the migration files)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


async def current_revisions(conn: AsyncConnection) -> frozenset[str]:
    """The revisions the database is at (`alembic current`); empty when never migrated.

    Read from Alembic's table directly: its MigrationContext logs two lines a call."""

    def read(sync: Connection) -> frozenset[str]:
        if not inspect(sync).has_table(VERSION_TABLE):
            return frozenset()
        return frozenset(sync.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())

    return await conn.run_sync(read)
