"""`vigil demo`: a simulated fraud model with known faults, replayed through the real tick."""
