"""the outbox's references are proven by `flattr check` instead of checked row by row

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 07:30:00

A month's summaries are written at once: a message per member and a delivery per chat
identity, 170,000 rows for 100,000 members. Their foreign keys cost a tenth of the
summaries' stage (each row locks the member or the message it names). Members and
messages are never deleted, and a delivery is only made from its message in the same
statement; as for postings and charges, `flattr check` proves that every message names a
member and every delivery its message (core/checks.py).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = (
    ("outbox_deliveries", "fk_outbox_deliveries_message_id_outbox", "outbox", "message_id"),
    ("outbox", "fk_outbox_member_id_members", "members", "member_id"),
)


def upgrade() -> None:
    for table, name, _, _ in KEYS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    for table, name, referred, column in reversed(KEYS):
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(name, referred, [column], ["id"])
