"""Vigil: watches ML models in production and tells the on-call engineer when they break."""

__version__ = "0.1.0"
