"""The HTTP rules every HTTP notifier shares (Slack, PagerDuty, webhook, GitHub).

2xx is delivered; 408, 425, 429 and 5xx are worth another attempt (honouring `Retry-After`,
given in seconds or as an HTTP date); any other status is permanent. A request that got no
answer is retryable unless the URL itself cannot be requested. Every message is masked: a
library or a server may echo the URL, a token or a key back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from alerts.notifiers.base import DeliveryError
from monitor import __version__
from monitor.core.redact import mask

RETRYABLE_STATUSES = frozenset({408, 425, 429})
USER_AGENT = f"vigil/{__version__}"
MAX_DETAIL = 300
"""How much of a server's answer an error message quotes."""


def is_retryable_status(status: int) -> bool:
    """Rate limiting, timeouts and server-side faults can clear; other answers will not."""
    return status >= 500 or status in RETRYABLE_STATUSES


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a number of seconds, or an HTTP date; None when unusable."""
    if not value:
        return None
    try:
        return max(float(value.strip()), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A header's value by case-insensitive name, from any mapping (httpx's headers, or the
    dict of lists slack-sdk hands back)."""
    for key, value in dict(headers or {}).items():
        if str(key).lower() == name.lower():
            raw = value[0] if isinstance(value, list | tuple) and value else value
            return None if raw is None else str(raw)
    return None


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be credentials: the whole URL, its password, its query."""
    parts = urlsplit(url)
    found = [url]
    if parts.password:
        found.append(parts.password)
    if parts.query:
        found.append(parts.query)
    return [s for s in found if len(s) >= 4]


def send_request(
    client: httpx.Client,
    service: str,
    method: str,
    url: str,
    secrets: Iterable[str],
    **kwargs: Any,
) -> httpx.Response:
    """One HTTP request; a request that got no answer becomes a `DeliveryError`.

    Refused, reset or timed-out requests can work later; a URL that cannot be requested at
    all (no http/https scheme, malformed) cannot. httpx messages can quote the URL, so the
    text is masked, and nothing is chained: the exception's request holds headers and body.
    """
    try:
        return client.request(method, url, **kwargs)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        error = DeliveryError(
            mask(f"{service} URL cannot be requested: {exc}", secrets), retryable=False
        )
    except httpx.HTTPError as exc:
        error = DeliveryError(
            mask(f"{service} request failed: {type(exc).__name__}: {exc}", secrets),
            retryable=True,
        )
    raise error


def status_error(
    service: str,
    status: int,
    headers: Mapping[str, Any] | None,
    detail: str,
    secrets: Iterable[str],
) -> DeliveryError:
    """A non-2xx answer as a `DeliveryError`: retryable (with the server's `Retry-After`)
    for 408/425/429 and 5xx, permanent for anything else."""
    retryable = is_retryable_status(status)
    retry_after = retry_after_seconds(header(headers, "retry-after")) if retryable else None
    message = f"{service} answered HTTP {status}"
    if detail:
        message += f": {clip(detail)}"
    return DeliveryError(mask(message, secrets), retryable=retryable, retry_after=retry_after)


def response_error(
    service: str, response: httpx.Response, detail: str, secrets: Iterable[str]
) -> DeliveryError:
    """`status_error` for an httpx response."""
    return status_error(service, response.status_code, response.headers, detail, secrets)


def clip(text: str, limit: int = MAX_DETAIL) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
