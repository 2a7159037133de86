"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from sqlalchemy import BigInteger, Table, cast, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_ignoring_conflicts(conn: AsyncConnection, table: Table, columns: list[str]):
    """INSERT … ON CONFLICT (columns) DO NOTHING, in the connection's dialect."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=columns)


def insert_updating_conflicts(conn: AsyncConnection, table: Table, columns: list[str],
                              values: dict, updates: dict):
    """INSERT … ON CONFLICT (columns) DO UPDATE SET updates, in the connection's dialect."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).values(values).on_conflict_do_update(
        index_elements=columns, set_=updates)


def sum_micros(column):
    """SUM of a money column as a BIGINT (PostgreSQL would answer NUMERIC), 0 when empty."""
    return cast(func.coalesce(func.sum(column), 0), BigInteger)
