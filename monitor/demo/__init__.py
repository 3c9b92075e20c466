"""Demo: `vigil demo`, a simulated fraud model with known faults replayed through the real
tick. A top layer: may import everything below `service`; nothing imports it."""
