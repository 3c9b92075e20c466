"""Keeps secrets out of logs, errors and the store: every secret in the config is masked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"


def _secrets(node: Any) -> Iterator[str]:
    if isinstance(node, SecretStr):
        value = node.get_secret_value()
        yield value
        try:
            password = make_url(value).password
        except (ArgumentError, ValueError):
            password = None
        if password:
            yield str(password)
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _secrets(getattr(node, name))
    elif isinstance(node, dict):
        for value in node.values():
            yield from _secrets(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _secrets(value)


class Redactor:
    """Replaces every configured secret (and URL password) in a text with `***`."""

    def __init__(self, config: BaseModel):
        found = {s for s in _secrets(config) if len(s) >= 4}
        self._secrets = sorted(found, key=len, reverse=True)

    def extend(self, config: BaseModel) -> None:
        """Also mask the secrets of a reloaded config; the old ones stay masked, since logs
        of ticks that started before the reload may still quote them."""
        found = set(self._secrets) | {s for s in _secrets(config) if len(s) >= 4}
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text
