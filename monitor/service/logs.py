"""Structured logs: JSON for machines, readable lines on a terminal, secrets always masked.

Vigil's own events go through structlog; the libraries' (APScheduler's missed runs,
SQLAlchemy's pool warnings) go through the standard `logging` module, and are rendered by the
same processors, so production gets one JSON object per line from every source, and the same
redaction applies to all of them: a secret never reaches the log, whoever logged it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

Redact = Callable[[str], str]
Processor = Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]


def _redact_value(redact: Redact, value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(redact, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(redact, v) for v in value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def redaction_processor(redact: Redact) -> Processor:
    """Masks every configured secret in every string of the event, nested ones included."""

    def process(
        _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            event[key] = _redact_value(redact, value)
        return event

    return process


def wants_json(log_format: str, stream: TextIO) -> bool:
    """`auto` is JSON unless a person is watching (the stream is a terminal)."""
    if log_format == "auto":
        return not stream.isatty()
    return log_format == "json"


class _StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on a fixed stream, or on the current `sys.stderr` when given none."""

    def __init__(self, stream: TextIO | None):
        self._fixed = stream
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """`StreamHandler.__init__` assigns one; the property decides instead."""


def configure(
    json_output: bool | None = None,
    redact: Redact = lambda s: s,
    level: int = logging.INFO,
    stream: TextIO | None = None,
) -> None:
    """Call once per process; `json_output=None` picks JSON unless the stream is a terminal.

    Without `stream`, every line goes to whatever `sys.stderr` is when it is written, not when
    this was called: a test runner or a CLI harness that swaps stderr never gets a closed file.
    """
    if json_output is None:
        json_output = wants_json("auto", stream or sys.stderr)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redaction_processor(redact),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_: structlog.PrintLogger(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = _StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redaction_processor(redact),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_vigil", False):
            root.removeHandler(old)
    handler._vigil = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries speak up only when something is wrong
