"""the bots' settings of each chat: flattr emoji, owner, channels

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 09:00:00

One row per Telegram chat or Discord server whose settings differ from the defaults (the
bot's own emoji, no owner, every channel): written by the bots through
PUT /api/v1/bot/chats/{chat}.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_settings",
        sa.Column("chat", sa.String(32), nullable=False),
        sa.Column("emoji", sa.String(64)),
        sa.Column("owner_identity", sa.String(64)),
        sa.Column("channels", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chat", name="pk_chat_settings"),
        sa.CheckConstraint("chat LIKE 'telegram:%' OR chat LIKE 'discord:%'",
                           name="ck_chat_settings_network_known"),
    )


def downgrade() -> None:
    op.drop_table("chat_settings")
