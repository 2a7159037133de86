"""the web pages' sessions and one-time sign-in links

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 09:00:00

A session is a row named by the hash of its cookie's secret: signing out, or the password
changing, ends it at once. A sign-in link is a one-time secret (its hash kept) that a chat
bot asks for a member made in chat: short-lived, used once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", Id, nullable=False),
        sa.Column("member_id", Id, nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_web_sessions"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name="fk_web_sessions_member_id_members"),
        sa.UniqueConstraint("secret_hash", name="uq_web_sessions_secret_hash"),
    )
    op.create_index("ix_web_sessions_member_id", "web_sessions", ["member_id"])
    op.create_table(
        "sign_in_links",
        sa.Column("id", Id, nullable=False),
        sa.Column("member_id", Id, nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("identity", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_sign_in_links"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name="fk_sign_in_links_member_id_members"),
        sa.UniqueConstraint("secret_hash", name="uq_sign_in_links_secret_hash"),
    )


def downgrade() -> None:
    op.drop_table("sign_in_links")
    op.drop_index("ix_web_sessions_member_id", table_name="web_sessions")
    op.drop_table("web_sessions")
