"""shares: the check constraints under their conventional names on PostgreSQL

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 14:20:00

0003 created the partitioned `shares` with its check constraints named twice over
(`ck_shares_ck_shares_state_known`). Settlement now gives each month's partition the
checks of `shares` by name before attaching it (core/settlement/partitions.py), so the
names must be the ones the models give: `ck_shares_state_known`, `ck_shares_amount_nonneg`.
SQLite keeps whatever names it has: it has no partitions and never compares them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMES = {
    "ck_shares_ck_shares_state_known": "ck_shares_state_known",
    "ck_shares_ck_shares_amount_nonneg": "ck_shares_amount_nonneg",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    present = set(op.get_bind().execute(sa.text(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'shares'::regclass"
    )).scalars())
    for old, new in RENAMES.items():
        if old in present:
            op.execute(f"ALTER TABLE shares RENAME CONSTRAINT {old} TO {new}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for old, new in RENAMES.items():
        op.execute(f"ALTER TABLE shares RENAME CONSTRAINT {new} TO {old}")
