"""disputes won bring the money back; a checkout keeps what Stripe refunded in all

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 10:00:00

- funding_reversals: `reinstated_transaction_id` and `reinstated_at`, set once when a
  dispute the platform won brings its money back (only a dispute is reinstated).
- stripe_checkouts: `refunded_micros`, the largest running total of refunds Stripe told of
  the payment (at most its amount): what refunds must have taken, whatever a dispute held
  meanwhile.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("funding_reversals") as batch:
        batch.add_column(sa.Column("reinstated_transaction_id", Id))
        batch.add_column(sa.Column("reinstated_at", sa.DateTime(timezone=True)))
        batch.create_unique_constraint("uq_funding_reversals_reinstated_transaction_id",
                                       ["reinstated_transaction_id"])
        batch.create_check_constraint(
            op.f("ck_funding_reversals_only_disputes_reinstated"),
            sa.text("(reinstated_transaction_id IS NULL AND reinstated_at IS NULL) OR "
                    "(kind = 'dispute' AND reinstated_transaction_id IS NOT NULL "
                    "AND reinstated_at IS NOT NULL)"))
    with op.batch_alter_table("stripe_checkouts") as batch:
        batch.add_column(sa.Column("refunded_micros", sa.BigInteger(), nullable=False,
                                   server_default=sa.text("0")))
        batch.create_check_constraint(
            op.f("ck_stripe_checkouts_refunded_within_amount"),
            sa.text("refunded_micros >= 0 AND refunded_micros <= amount_micros"))
    # What refunds took so far is what Stripe had refunded of each payment.
    op.execute("UPDATE stripe_checkouts SET refunded_micros = ("
               "SELECT COALESCE(SUM(r.amount_micros), 0) FROM funding_reversals r "
               "WHERE r.funding_id = stripe_checkouts.funding_id AND r.kind = 'refund') "
               "WHERE funding_id IS NOT NULL")


def downgrade() -> None:
    reinstated = op.get_bind().execute(sa.text(
        "SELECT COUNT(*) FROM funding_reversals WHERE reinstated_transaction_id IS NOT NULL"
    )).scalar()
    if reinstated:
        raise RuntimeError("0011 cannot be undone: disputes won brought money back, and the "
                           "ledger would lose what records it")
    with op.batch_alter_table("stripe_checkouts") as batch:
        batch.drop_constraint(op.f("ck_stripe_checkouts_refunded_within_amount"),
                              type_="check")
        batch.drop_column("refunded_micros")
    with op.batch_alter_table("funding_reversals") as batch:
        batch.drop_constraint(op.f("ck_funding_reversals_only_disputes_reinstated"),
                              type_="check")
        batch.drop_constraint("uq_funding_reversals_reinstated_transaction_id", type_="unique")
        batch.drop_column("reinstated_at")
        batch.drop_column("reinstated_transaction_id")
