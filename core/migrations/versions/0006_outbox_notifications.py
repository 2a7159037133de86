"""the outbox of members' messages, their deliveries, and notification settings

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:10:00

- outbox: one message per member, period and kind (the monthly summary, the reminder), as
  its data and its rendered text and HTML; the web inbox reads it.
- outbox_deliveries: a message's way to each chat identity and e-mail address, leased by
  the bots and the worker, retried with back-off, `dead` after its last try.
- notification_settings: the channels a member chose.
- identities: when a message to one failed for good.
- settlements: months settled before summaries existed count as summarised (stage 6), so
  that nobody receives a summary of a month long past.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)
SUMMARIES_STAGE = 6


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("unreachable_at", Timestamp))
        batch.add_column(sa.Column("unreachable_reason", sa.String(200)))
    op.create_table(
        "outbox",
        sa.Column("id", Id, primary_key=True),
        sa.Column("member_id", Id, sa.ForeignKey("members.id",
                  name="fk_outbox_member_id_members"), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("read_at", Timestamp),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.CheckConstraint("kind IN ('summary', 'reminder')", name="ck_outbox_kind_known"),
        sa.UniqueConstraint("member_id", "period", "kind",
                            name="uq_outbox_member_id_period_kind"),
    )
    op.create_index("ix_outbox_member_id_id", "outbox", ["member_id", "id"])
    op.create_table(
        "outbox_deliveries",
        sa.Column("id", Id, primary_key=True),
        sa.Column("message_id", Id, sa.ForeignKey("outbox.id",
                  name="fk_outbox_deliveries_message_id_outbox"), nullable=False),
        sa.Column("member_id", Id, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("available_at", Timestamp, nullable=False),
        sa.Column("last_error", sa.String(500)),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("sent_at", Timestamp),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_deliveries"),
        sa.CheckConstraint("channel IN ('telegram', 'discord', 'email')",
                           name="ck_outbox_deliveries_channel_known"),
        sa.CheckConstraint("state IN ('pending', 'leased', 'sent', 'dead', 'unreachable')",
                           name="ck_outbox_deliveries_state_known"),
        sa.UniqueConstraint("message_id", "channel", "address",
                            name="uq_outbox_deliveries_message_id_channel_address"),
    )
    op.create_index("ix_outbox_deliveries_waiting", "outbox_deliveries",
                    ["channel", "available_at"],
                    postgresql_where=sa.text("state IN ('pending', 'leased')"),
                    sqlite_where=sa.text("state IN ('pending', 'leased')"))
    op.create_index("ix_outbox_deliveries_unsent", "outbox_deliveries", ["state"],
                    postgresql_where=sa.text("state <> 'sent'"),
                    sqlite_where=sa.text("state <> 'sent'"))
    op.create_table(
        "notification_settings",
        sa.Column("member_id", Id, sa.ForeignKey("members.id",
                  name="fk_notification_settings_member_id_members"), nullable=False),
        sa.Column("telegram", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("discord", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("email", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("reminders", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("member_id", name="pk_notification_settings"),
    )
    op.execute(f"UPDATE settlements SET stage = {SUMMARIES_STAGE} WHERE status = 'settled'")


def downgrade() -> None:
    op.execute(f"UPDATE settlements SET stage = {SUMMARIES_STAGE - 1} "
               f"WHERE stage = {SUMMARIES_STAGE}")
    op.drop_table("notification_settings")
    op.drop_index("ix_outbox_deliveries_unsent", table_name="outbox_deliveries")
    op.drop_index("ix_outbox_deliveries_waiting", table_name="outbox_deliveries")
    op.drop_table("outbox_deliveries")
    op.drop_index("ix_outbox_member_id_id", table_name="outbox")
    op.drop_table("outbox")
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("unreachable_reason")
        batch.drop_column("unreachable_at")
