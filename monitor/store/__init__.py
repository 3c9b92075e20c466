"""Store: Vigil's state (SQLAlchemy tables, Alembic migrations, watermarks, buckets, SLI
history). May import `config`, `detectors` and `core`; ingest, alerts and the engine build on it."""
