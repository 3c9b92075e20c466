"""Engine: the tick as named stages (read ... evidence), windows, judging, budgets, backtest,
retention. May import `alerts`, `ingest`, `store`, `config`, `detectors` and `core`."""
