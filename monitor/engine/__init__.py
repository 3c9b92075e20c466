"""Engine: the tick as named stages (read, fold, store, window, values, judge, incidents,
evidence), windows, judging and budgets. May import `core`..`ingest`, `detectors` and `alerts`."""
