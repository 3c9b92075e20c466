"""Configuration: typed models and the loader that reports problems by line and field."""

from monitor.config.loader import ConfigError, Problem, load_config, parse_config
from monitor.config.models import ModelConfig, SLOConfig, VigilConfig

__all__ = [
    "ConfigError",
    "ModelConfig",
    "Problem",
    "SLOConfig",
    "VigilConfig",
    "load_config",
    "parse_config",
]
