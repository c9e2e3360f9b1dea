"""Alembic's entry point: careerbot runs migrations on a connection it passes in."""

from alembic import context
from sqlalchemy import text

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":
    # Servers starting at once against one database migrate one after the other.
    connection.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
