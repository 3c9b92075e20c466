"""Detectors: metric values, with their sample size, from a merged window summary (one Protocol,
one registry). May import `monitor.core` only; `config` and every stage above use it."""
