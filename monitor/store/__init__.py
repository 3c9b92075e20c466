"""Store: Vigil's state (SQLAlchemy tables, Alembic migrations, watermarks, buckets, SLI
history). May import `core` and `config` only; ingest, engine and alerts build on it."""
