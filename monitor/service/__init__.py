"""Service: the long-running daemon around the engine (scheduler, leases, HTTP, metrics, logs,
blind monitoring). May import every layer below it; only `cli`, `report` and `demo` sit above."""
