"""Config: typed, validated models of the YAML file and the loader that reports every problem
by line and field. May import `detectors` (metric names and tasks) and `core` only."""

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
