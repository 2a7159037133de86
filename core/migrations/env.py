"""Alembic environment: runs the migrations on the async engine of the configured database."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from core.db import create_engine
from core.schema import metadata
from core.settlement.partitions import is_partition


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """The monthly partitions of shares are made by settlement, not by the models."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return table is None or not is_partition(table.name)


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = create_engine(context.config.get_main_option("database_url"))
    try:
        async with engine.connect() as async_connection:
            await async_connection.run_sync(run_on)
            await async_connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `flattr db upgrade`")
asyncio.run(run_online())
