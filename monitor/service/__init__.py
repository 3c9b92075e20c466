"""Service: the daemon around the engine (scheduler, leases, HTTP, metrics, logs, blind).
May import `report` and every layer below; only `cli` imports it (`demo` is beside it)."""
