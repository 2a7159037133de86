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
  calls once: it takes the month's flattrs lock shared (settlement's split of that month
  takes it exclusively; core/locks.py) and then, being VOLATILE, reads `settlements` with a
  fresh snapshot, so a flattr can neither slip in between a month's charges and its split
  nor land in a month settled (or before one settled). That fresh read needs READ
  COMMITTED: under a stricter level the function refuses to run.
- things: a web page's owner comes from claims alone, over whole path segments: pages a
  bot named an author for, or that a claim's prefix covered only as a string (`/blog`
  and `/blogger`), get the owner their claims give them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PERIOD_FLATTRS_LOCK = 0x466C6174  # core/locks.py, with the month as in period_lock_key

PERIOD_OPEN = f"""
CREATE OR REPLACE FUNCTION flattr_period_open(wanted text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'flattr_period_open reads settlements afresh: it needs READ '
                        'COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    PERFORM pg_advisory_xact_lock_shared(
        {PERIOD_FLATTRS_LOCK},
        CAST(substr(wanted, 1, 4) AS integer) * 12 + CAST(substr(wanted, 6, 2) AS integer) - 1);
    RETURN NOT EXISTS (SELECT 1 FROM settlements WHERE period >= wanted);
END
$$
"""

# The owner the verified claims give a page: the longest prefix covering whole segments.
OWNERS_FROM_CLAIMS = """
UPDATE things SET author_identity = NULL, owner_id = (
    SELECT c.member_id FROM claims c
    WHERE c.verified_at IS NOT NULL AND c.host = things.host
      AND (things.path = rtrim(c.path_prefix, '/')
           OR substr(things.path, 1, length(rtrim(c.path_prefix, '/')) + 1)
              = rtrim(c.path_prefix, '/') || '/')
    ORDER BY length(c.path_prefix) DESC LIMIT 1)
WHERE kind = 'url' AND (owner_id IS NOT NULL OR author_identity IS NOT NULL)
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
    op.execute(OWNERS_FROM_CLAIMS)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PERIOD_OPEN)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS flattr_period_open(text)")
    op.drop_index("ix_fundings_member_id", table_name="fundings")
    op.drop_table("fundings")
    op.drop_index("ix_budgets_member_id_set_at", table_name="budgets")
    op.drop_table("budgets")
