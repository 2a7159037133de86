"""Schema migrations (Alembic), run by `flattr db upgrade` and by the test fixtures."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("database_url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


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
