"""Ingest: reads new rows from a model's source and folds them into bucket summaries and the
reference. May import `core`, `config` and `store`; never the engine, the service or alerts."""
