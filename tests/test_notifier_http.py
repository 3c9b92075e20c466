"""The HTTP rules every HTTP notifier shares, and the one masking function, on their own."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from alerts.notifiers.http import (
    header,
    is_retryable_status,
    response_error,
    retry_after_seconds,
    status_error,
)
from monitor.core.redact import MASK, mask

NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        (format_datetime(datetime(2026, 11, 3, 9, 1, 30, tzinfo=UTC), usegmt=True), 90.0),
        (format_datetime(datetime(2026, 11, 3, 8, 0, tzinfo=UTC), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    value: str | None, expected: float | None
) -> None:
    """Seconds or an HTTP date (RFC 9110 10.2.3), never negative; anything else is unknown."""
    assert retry_after_seconds(value, now=NOW.timestamp()) == expected


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (425, True),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_statuses_worth_retrying(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable
    error = status_error("svc", status, {"Retry-After": "5"}, "", [])
    assert error.retryable is retryable
    assert error.retry_after == (5.0 if retryable else None)


def test_headers_are_found_whatever_their_case_and_shape() -> None:
    """httpx headers, a plain dict, or slack-sdk's dict of lists."""
    assert header({"retry-after": ["7"]}, "Retry-After") == "7"
    assert header({"RETRY-AFTER": "8"}, "retry-after") == "8"
    assert header(httpx.Headers({"Retry-After": "9"}), "retry-after") == "9"
    assert header({}, "retry-after") is None
    assert header(None, "retry-after") is None


def test_errors_quote_the_answer_but_never_a_secret() -> None:
    secret = "tok-0123456789"
    response = httpx.Response(503, headers={"Retry-After": "4"}, text=f"down, {secret}")
    error = response_error("svc", response, response.text + "x" * 400, [secret])
    assert error.retryable is True and error.retry_after == 4.0
    assert secret not in str(error)
    assert str(error).startswith(f"svc answered HTTP 503: down, {MASK}")
    assert str(error).endswith("…") and len(str(error)) < 340


def test_mask_replaces_longest_secrets_first() -> None:
    """A URL and the password inside it: the URL is masked whole, not left with a stub."""
    url = "postgresql://vigil:s3cret-pw@db/vigil"
    text = f"cannot connect to {url}; password s3cret-pw refused"
    assert mask(text, ["s3cret-pw", url, ""]) == "cannot connect to ***; password *** refused"
    assert mask("nothing here", []) == "nothing here"
