"""budget history, funding records, and the guard of flattrs against a closed month

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 15:20:00

- budgets: each budget a member sets, with when they set it; a month is charged at the
  budget in force at its end. Filled with each member's budget as set when they joined
  (before this, every month was charged at the current budget).
- fundings: a row per movement of money in from outside, naming its ledger transaction;
  filled from the funding transactions already in the ledger.
- PostgreSQL: `flattr_period_open(period)`, which the click path's one-statement batch
  calls once: it takes the shared ownership lock (settlement's split takes it exclusively)
  and then, being VOLATILE, reads `settlements` with a fresh snapshot, so a flattr can
  neither slip in between a month's charges and its split nor land in a settled month.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OWNERSHIP_LOCK = 0x466C61747472  # core/locks.py

PERIOD_OPEN = f"""
CREATE OR REPLACE FUNCTION flattr_period_open(wanted text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({OWNERSHIP_LOCK});
    RETURN NOT EXISTS (SELECT 1 FROM settlements WHERE period = wanted);
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", Id, primary_key=True),
        sa.Column("member_id", Id, sa.ForeignKey("members.id",
                  name="fk_budgets_member_id_members"), nullable=False),
        sa.Column("budget_micros", sa.BigInteger(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_budgets"),
        sa.CheckConstraint("budget_micros > 0", name="ck_budgets_budget_positive"),
    )
    op.create_index("ix_budgets_member_id_set_at", "budgets", ["member_id", "set_at"])
    op.create_table(
        "fundings",
        sa.Column("id", Id, primary_key=True),
        sa.Column("member_id", Id, sa.ForeignKey("members.id",
                  name="fk_fundings_member_id_members"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fundings"),
        sa.UniqueConstraint("transaction_id", name="uq_fundings_transaction_id"),
        sa.CheckConstraint("amount_micros > 0", name="ck_fundings_amount_positive"),
    )
    op.create_index("ix_fundings_member_id", "fundings", ["member_id"])

    op.execute("""
        INSERT INTO budgets (member_id, budget_micros, set_at)
        SELECT id, budget_micros, created_at FROM members WHERE budget_micros IS NOT NULL
    """)
    op.execute("""
        INSERT INTO fundings (member_id, source, amount_micros, transaction_id, created_at)
        SELECT t.member_id, substr(t.kind, 9), p.amount_micros, t.id, t.created_at
        FROM ledger_transactions t
        JOIN postings p ON p.transaction_id = t.id AND p.amount_micros > 0
        WHERE t.kind LIKE 'funding.%' AND t.member_id IS NOT NULL
    """)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PERIOD_OPEN)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS flattr_period_open(text)")
    op.drop_index("ix_fundings_member_id", table_name="fundings")
    op.drop_table("fundings")
    op.drop_index("ix_budgets_member_id_set_at", table_name="budgets")
    op.drop_table("budgets")
