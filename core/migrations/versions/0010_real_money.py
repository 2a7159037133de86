"""real money in and out: Stripe checkouts and events, reversals into debt, SEPA batches

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09 10:00:00

- accounts: a member's `debt` account (made when first needed) holds what a refund or a
  dispute took back beyond their giving balance: never above zero, the only account beside
  `external` that may be below it. `payouts_sent` holds payouts sent to the bank and not yet
  answered.
- payouts: `sent`, in a batch (`payout_batches`, each the credit-transfer file it was).
- payout_accounts: a member's IBAN and holder's name.
- funding_reversals: money a funding's source took back (refunds, disputes).
- stripe_checkouts, stripe_events: the sessions opened and the events received, each once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

OLD_SYSTEM = "'external', 'fees', 'unclaimed', 'charity', 'payouts'"
NEW_SYSTEM = OLD_SYSTEM + ", 'payouts_sent'"
ACCOUNT_CHECKS = {  # name: (before, after)
    "ck_accounts_kind_known": (f"kind IN ('giving', 'revenue', {OLD_SYSTEM})",
                               f"kind IN ('giving', 'revenue', 'debt', {NEW_SYSTEM})"),
    "ck_accounts_owner_matches_kind": (f"(member_id IS NULL) = (kind IN ({OLD_SYSTEM}))",
                                       f"(member_id IS NULL) = (kind IN ({NEW_SYSTEM}))"),
    "ck_accounts_not_overdrawn": ("kind = 'external' OR balance_micros >= 0",
                                  "kind IN ('external', 'debt') OR balance_micros >= 0"),
}
PAYOUT_STATUS = ("status IN ('requested', 'paid', 'failed')",
                 "status IN ('requested', 'sent', 'paid', 'failed')")


def _replace_checks(table: str, checks: dict[str, tuple[str, str]], after: bool) -> None:
    with op.batch_alter_table(table) as batch:
        for name, texts in checks.items():
            batch.drop_constraint(op.f(name), type_="check")
            batch.create_check_constraint(op.f(name), sa.text(texts[1 if after else 0]))


def upgrade() -> None:
    _replace_checks("accounts", ACCOUNT_CHECKS, after=True)
    with op.batch_alter_table("accounts") as batch:
        batch.create_check_constraint(op.f("ck_accounts_debt_not_positive"),
                                      sa.text("kind <> 'debt' OR balance_micros <= 0"))
    op.execute("INSERT INTO accounts (kind, member_id, balance_micros) "
               "VALUES ('payouts_sent', NULL, 0)")

    op.create_table(
        "payout_batches",
        sa.Column("id", Id, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(35), nullable=False),
        sa.Column("payout_count", sa.Integer(), nullable=False),
        sa.Column("total_micros", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payout_batches"),
        sa.UniqueConstraint("message_id", name="uq_payout_batches_message_id"),
        sa.CheckConstraint("payout_count > 0 AND total_micros > 0",
                           name=op.f("ck_payout_batches_not_empty")),
    )
    with op.batch_alter_table("payouts") as batch:
        batch.add_column(sa.Column("batch_id", Id))
        batch.drop_constraint(op.f("ck_payouts_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_payouts_status_known"), sa.text(PAYOUT_STATUS[1]))
        batch.create_check_constraint(op.f("ck_payouts_sent_in_a_batch"),
                                      sa.text("status <> 'sent' OR batch_id IS NOT NULL"))
        batch.create_index("ix_payouts_batch_id", ["batch_id"])

    op.create_table(
        "payout_accounts",
        sa.Column("member_id", Id, nullable=False),
        sa.Column("iban", sa.String(34), nullable=False),
        sa.Column("bic", sa.String(11)),
        sa.Column("holder_name", sa.String(70), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("member_id", name="pk_payout_accounts"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name="fk_payout_accounts_member_id_members"),
    )
    op.create_table(
        "funding_reversals",
        sa.Column("id", Id, nullable=False),
        sa.Column("funding_id", Id, nullable=False),
        sa.Column("member_id", Id, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(255), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("debt_micros", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", Id, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_funding_reversals"),
        sa.ForeignKeyConstraint(["funding_id"], ["fundings.id"],
                                name="fk_funding_reversals_funding_id_fundings"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name="fk_funding_reversals_member_id_members"),
        sa.UniqueConstraint("transaction_id", name="uq_funding_reversals_transaction_id"),
        sa.UniqueConstraint("kind", "reference", name="uq_funding_reversals_kind_reference"),
        sa.CheckConstraint("kind IN ('refund', 'dispute')", name=op.f("ck_funding_reversals_kind_known")),
        sa.CheckConstraint(
            "amount_micros > 0 AND debt_micros >= 0 AND debt_micros <= amount_micros",
            name=op.f("ck_funding_reversals_amounts_valid")),
    )
    op.create_index("ix_funding_reversals_funding_id", "funding_reversals", ["funding_id"])
    op.create_table(
        "stripe_checkouts",
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("member_id", Id, nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("fee_micros", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payment_intent", sa.String(255)),
        sa.Column("funding_id", Id),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("completed_at", Timestamp),
        sa.PrimaryKeyConstraint("session_id", name="pk_stripe_checkouts"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name="fk_stripe_checkouts_member_id_members"),
        sa.UniqueConstraint("payment_intent", name="uq_stripe_checkouts_payment_intent"),
        sa.UniqueConstraint("funding_id", name="uq_stripe_checkouts_funding_id"),
        sa.CheckConstraint("status IN ('open', 'paid', 'expired')",
                           name=op.f("ck_stripe_checkouts_status_known")),
        sa.CheckConstraint("amount_micros > 0 AND fee_micros >= 0",
                           name=op.f("ck_stripe_checkouts_amounts_valid")),
        sa.CheckConstraint("(status = 'paid') = (funding_id IS NOT NULL)",
                           name=op.f("ck_stripe_checkouts_paid_is_funded")),
    )
    op.create_index("ix_stripe_checkouts_member_id", "stripe_checkouts", ["member_id"])
    op.create_table(
        "stripe_events",
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("waiting_for", sa.String(255)),
        sa.Column("payload", sa.Text()),
        sa.Column("note", sa.String(200)),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("done_at", Timestamp),
        sa.PrimaryKeyConstraint("event_id", name="pk_stripe_events"),
        sa.CheckConstraint("state IN ('done', 'ignored', 'waiting')",
                           name=op.f("ck_stripe_events_state_known")),
        sa.CheckConstraint(
            "state <> 'waiting' OR (waiting_for IS NOT NULL AND payload IS NOT NULL)",
            name=op.f("ck_stripe_events_waiting_keeps_payload")),
    )
    op.create_index("ix_stripe_events_waiting_for", "stripe_events", ["waiting_for"],
                    postgresql_where=sa.text("state = 'waiting'"),
                    sqlite_where=sa.text("state = 'waiting'"))


def downgrade() -> None:
    bind = op.get_bind()
    moved = bind.execute(sa.text(
        "SELECT COUNT(*) FROM postings p JOIN accounts a ON a.id = p.account_id "
        "WHERE a.kind IN ('debt', 'payouts_sent')")).scalar()
    if moved:
        raise RuntimeError("0010 cannot be undone: debts or sent payouts have moved money, "
                           "and the ledger would lose their postings")
    # Money history 0009 has no place for: a reversal's transaction would lose its record
    # (`flattr check`), a card checkout what links its funding to the payment.
    for table in ("funding_reversals", "stripe_checkouts"):
        if bind.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar():
            raise RuntimeError(f"0010 cannot be undone: {table} holds money history that "
                               "0009 has no place for")
    op.drop_index("ix_stripe_events_waiting_for", table_name="stripe_events")
    op.drop_table("stripe_events")
    op.drop_index("ix_stripe_checkouts_member_id", table_name="stripe_checkouts")
    op.drop_table("stripe_checkouts")
    op.drop_index("ix_funding_reversals_funding_id", table_name="funding_reversals")
    op.drop_table("funding_reversals")
    op.drop_table("payout_accounts")
    with op.batch_alter_table("payouts") as batch:
        batch.drop_index("ix_payouts_batch_id")
        batch.drop_constraint(op.f("ck_payouts_sent_in_a_batch"), type_="check")
        batch.drop_constraint(op.f("ck_payouts_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_payouts_status_known"), sa.text(PAYOUT_STATUS[0]))
        batch.drop_column("batch_id")
    op.drop_table("payout_batches")
    op.execute("DELETE FROM accounts WHERE kind IN ('payouts_sent', 'debt')")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(op.f("ck_accounts_debt_not_positive"), type_="check")
    _replace_checks("accounts", ACCOUNT_CHECKS, after=False)
