"""Vigil's state store: SQLAlchemy tables, Alembic migrations and an engine factory."""
