"""Demo: `vigil demo`, a simulated fraud model with known faults replayed through the real tick.
Beside `service` (neither imports the other); may import `report` and below; only `cli` uses it."""
