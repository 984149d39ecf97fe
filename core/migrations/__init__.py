"""Alembic environment and revisions of the core schema (configured in code by core.schema)."""
