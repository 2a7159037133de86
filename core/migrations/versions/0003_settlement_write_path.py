"""settlement write path: shares partitioned by period, lean charges and postings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:50:00

- shares: primary key (period, giver_id, flattr_id); on PostgreSQL partitioned by period,
  a partition per settled month (settlement fills each one before indexing it);
- charges: primary key (period, member_id), no foreign key, no (period, status) index;
- postings: no foreign keys (`flattr check` proves that each names its account and
  transaction);
- accounts: fillfactor 70 on PostgreSQL, so that balance updates stay on their page (HOT).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HELD = sa.text("state = 'held'")
RESOLVED = sa.text("resolved_by IS NOT NULL")


def _charges(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "charges", metadata,
        sa.Column("member_id", Id, nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("flattr_count", sa.Integer(), nullable=False),
        sa.Column("budget_micros", sa.BigInteger(), nullable=False),
        sa.Column("balance_micros", sa.BigInteger(), nullable=False),
        sa.Column("charge_micros", sa.BigInteger(), nullable=False),
        sa.Column("fee_micros", sa.BigInteger(), nullable=False),
        sa.Column("net_micros", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status IN ('funded', 'unfunded', 'idle')",
                           name="ck_charges_status_known"),
        sa.CheckConstraint("charge_micros <= balance_micros", name="ck_charges_charge_covered"),
        sa.CheckConstraint("charge_micros = fee_micros + net_micros",
                           name="ck_charges_charge_adds_up"),
        sa.CheckConstraint("charge_micros >= 0 AND fee_micros >= 0 AND net_micros >= 0",
                           name="ck_charges_amounts_nonneg"),
        sa.PrimaryKeyConstraint("period", "member_id", name="pk_charges"),
    )


def _postings(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "postings", metadata,
        sa.Column("id", Id, nullable=False),
        sa.Column("transaction_id", Id, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_micros <> 0", name="ck_postings_amount_nonzero"),
        sa.PrimaryKeyConstraint("id", name="pk_postings"),
        sa.Index("ix_postings_transaction_id", "transaction_id"),
        sa.Index("ix_postings_account_id", "account_id"),
    )


def _shares_columns() -> list:
    return [
        sa.Column("giver_id", Id, nullable=False),
        sa.Column("flattr_id", Id, nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("thing_id", Id, nullable=False),
        sa.Column("owner_id", Id, nullable=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("resolved_period", sa.String(7), nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.CheckConstraint("state IN ('paid', 'held', 'released', 'returned')",
                           name="ck_shares_state_known"),
        sa.CheckConstraint("amount_micros >= 0", name="ck_shares_amount_nonneg"),
        sa.PrimaryKeyConstraint("period", "giver_id", "flattr_id", name="pk_shares"),
    ]


def _shares(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "shares", metadata, *_shares_columns(),
        sa.Index("ix_shares_held_thing_id", "thing_id", sqlite_where=HELD),
        sa.Index("ix_shares_resolved_by", "resolved_by", sqlite_where=RESOLVED),
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def _upgrade_sqlite() -> None:
    # SQLite changes a key or a foreign key only by copying the table.
    for build in (_charges, _postings, _shares):
        table = build(sa.MetaData())
        with op.batch_alter_table(table.name, recreate="always", copy_from=table):
            pass


def _upgrade_postgresql() -> None:
    op.execute("ALTER TABLE postings DROP CONSTRAINT fk_postings_account_id_accounts, "
               "DROP CONSTRAINT fk_postings_transaction_id_ledger_transactions")
    op.execute("ALTER TABLE charges DROP CONSTRAINT fk_charges_member_id_members, "
               "DROP CONSTRAINT pk_charges, "
               "ADD CONSTRAINT pk_charges PRIMARY KEY (period, member_id)")
    op.execute("DROP INDEX ix_charges_period_status")
    op.execute("ALTER TABLE accounts SET (fillfactor = 70)")

    op.execute("ALTER TABLE shares RENAME TO shares_before_0003")
    op.execute("ALTER TABLE shares_before_0003 RENAME CONSTRAINT pk_shares TO pk_shares_0002")
    op.execute("DROP INDEX ix_shares_held_thing_id")
    op.execute("DROP INDEX ix_shares_resolved_by")
    op.create_table("shares", *_shares_columns(), postgresql_partition_by="LIST (period)")
    op.create_index("ix_shares_held_thing_id", "shares", ["thing_id"], postgresql_where=HELD)
    op.create_index("ix_shares_resolved_by", "shares", ["resolved_by"],
                    postgresql_where=RESOLVED)
    periods = op.get_bind().execute(
        sa.text("SELECT DISTINCT period FROM shares_before_0003 ORDER BY period")
    ).scalars()
    for period in periods:
        year, month = period.split("-")
        op.execute(f"CREATE TABLE shares_{year}_{month} PARTITION OF shares "
                   f"FOR VALUES IN ('{year}-{month}')")
    op.execute("INSERT INTO shares SELECT giver_id, flattr_id, period, thing_id, owner_id, "
               "amount_micros, state, resolved_period, resolved_by FROM shares_before_0003")
    op.execute("DROP TABLE shares_before_0003")


def downgrade() -> None:
    raise NotImplementedError("0003 is not reversible: restore a backup taken before it")
