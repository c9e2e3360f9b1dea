"""Phrasings a curator skipped in review, so that review does not offer them again."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "skips",
        sa.Column("phrasing", sa.Text),
        sa.Column("question", sa.Text),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phrasing", "question"),
    )


def downgrade() -> None:
    op.drop_table("skips")
