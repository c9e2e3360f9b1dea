"""The question log: asks, votes on their answers, and suggestions picked."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "asks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answered", sa.Boolean, nullable=False),
        sa.Column("uncovered", sa.String(200)),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.Column("suggestions", sa.JSON, nullable=False),
        sa.Column("index_version", sa.String(100), nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_asks_asked_at", "asks", ["asked_at"])
    op.create_table(
        "votes",
        sa.Column("ask_id", sa.String(32), sa.ForeignKey("asks.id", ondelete="CASCADE")),
        sa.Column("answer_id", sa.String(300)),
        sa.Column("helpful", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ask_id", "answer_id"),
    )
    op.create_table(
        "picks",
        sa.Column("ask_id", sa.String(32), sa.ForeignKey("asks.id", ondelete="CASCADE")),
        sa.Column("suggestion", sa.Text),
        sa.Column("picked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ask_id", "suggestion"),
    )


def downgrade() -> None:
    op.drop_table("picks")
    op.drop_table("votes")
    op.drop_table("asks")
