"""Alerts: incidents, routing, the outbox and the notifiers that reach people. Beside `ingest`:
may import `store`, `config`, `detectors`, `core`; never ingest, engine, service or report."""
