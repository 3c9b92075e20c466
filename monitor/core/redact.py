"""Keeps secrets out of logs, errors and the store: every secret in the config is masked."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"
MIN_SECRET = 4
"""Shorter configured values are not searched for: masking every `a` would garble text."""


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by `***`, longest first, so a secret that contains
    another (a URL and its password) is masked whole. The one masking function: logs, config
    errors, store errors and every notifier's `DeliveryError` go through it."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def url_password(value: str) -> str | None:
    """The password of `value` read as a database URL, if it is one and has one."""
    try:
        password = make_url(value).password
    except (ArgumentError, ValueError):
        return None
    return str(password) if password else None


def _secrets(node: Any) -> Iterator[str]:
    if isinstance(node, SecretStr):
        value = node.get_secret_value()
        yield value
        password = url_password(value)
        if password:
            yield password
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
        self._secrets = {s for s in _secrets(config) if len(s) >= MIN_SECRET}

    def extend(self, config: BaseModel) -> None:
        """Also mask the secrets of a reloaded config; the old ones stay masked, since logs
        of ticks that started before the reload may still quote them."""
        self._secrets |= {s for s in _secrets(config) if len(s) >= MIN_SECRET}

    def __call__(self, text: str) -> str:
        return mask(text, self._secrets)
