"""Ingest: reads new rows from a model's source and folds them into bucket summaries and the
reference. May import `store`, `config`, `detectors`, `core`; never `alerts` (beside it), or up."""
