"""Detectors turn a merged window summary into metric values that carry their sample size."""
