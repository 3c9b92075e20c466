"""Receiver kind -> factory. Adding an integration is a module and one line here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alerts.notifiers import slack
from alerts.notifiers.base import Notifier
from monitor.config.models import ReceiverConfig, VigilConfig

Factory = Callable[[Any, Path], Notifier]

NOTIFIERS: dict[str, Factory] = {
    "slack": lambda cfg, state_dir: slack.from_config(cfg, state_dir / "slack-payloads.jsonl"),
}


def build_notifier(receiver: ReceiverConfig, state_dir: Path) -> Notifier:
    kind = receiver.kind
    return NOTIFIERS[kind](getattr(receiver, kind), state_dir)


def build_notifiers(config: VigilConfig, state_dir: Path) -> dict[str, Notifier]:
    return {name: build_notifier(r, state_dir) for name, r in config.receivers.items()}
