"""The contract every registered notifier keeps: failures are `DeliveryError`s that never carry
a secret (token, routing key, webhook secret, URL password), whatever the server says back.

Each kind in `registry.NOTIFIERS` is built from a config through the registry (secrets from
the environment, as in production) and pointed at a hostile server that echoes the whole
request (headers, path, query and body) into its error answers, then at a port where nothing
listens. A kind without a case here fails the suite, so a new integration cannot skip it.
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.notifiers.base import DeliveryError, Notification
from alerts.notifiers.registry import NOTIFIERS, build_notifiers
from monitor.store.db import make_engine, upgrade
from tests.builders import build_alert, build_config, build_notification, config_dict
from tests.fakes.http import FakeHTTPServer, Reply, Request

SLACK_TOKEN = "xoxb-contract-SLACKSECRET-0123"
PD_KEY = "PDSECRETPDSECRETPDSECRETPDSECRE1"
HOOK_PASSWORD = "HOOKPASSWORD99"
HOOK_TOKEN = "HOOKQUERYTOKEN77"
HOOK_SECRET = "HOOKHMACSECRET55"
SLACK_HOOK = "T000/B000/SLACKHOOKSECRET42"
GH_TOKEN = "ghp_GITHUBSECRET0123456789"
STORE_PASSWORD = "STOREPASSWORD31"
SECRETS = (
    SLACK_TOKEN,
    PD_KEY,
    HOOK_PASSWORD,
    HOOK_TOKEN,
    HOOK_SECRET,
    "SLACKHOOKSECRET42",
    GH_TOKEN,
    STORE_PASSWORD,
)
ENV = {
    "SLACK_TOKEN": SLACK_TOKEN,
    "PD_KEY": PD_KEY,
    "HOOK_SECRET": HOOK_SECRET,
    "GH_TOKEN": GH_TOKEN,
}


def receivers(base: str) -> dict[str, tuple[str, dict[str, Any], dict[str, str]]]:
    """name -> (kind, receiver config, extra env) for every case, all aimed at `base`."""
    host = base.removeprefix("http://")
    return {
        "slack-api": (
            "slack",
            {"channel": "#ml-oncall", "token": "${SLACK_TOKEN}", "base_url": base + "/api/"},
            {},
        ),
        "slack-hook": (
            "slack",
            {"webhook_url": "${SLACK_HOOK_URL}"},
            {"SLACK_HOOK_URL": f"{base}/services/{SLACK_HOOK}"},
        ),
        "pagerduty": ("pagerduty", {"routing_key": "${PD_KEY}", "base_url": base}, {}),
        "webhook": (
            "webhook",
            {"url": "${HOOK_URL}", "secret": "${HOOK_SECRET}"},
            {"HOOK_URL": f"http://bot:{HOOK_PASSWORD}@{host}/hook?token={HOOK_TOKEN}"},
        ),
        "github": (
            "github",
            {"repo": "acme/models", "token": "${GH_TOKEN}", "base_url": base},
            {},
        ),
        "bugs": ("bug_queue", {}, {}),
    }


def test_every_registered_kind_has_a_contract_case() -> None:
    assert {kind for kind, _, _ in receivers("http://x").values()} == set(NOTIFIERS)


def notification() -> Notification:
    alert = build_alert(
        slo="accuracy>=0.9@24h",
        severity="ticket",
        value=0.8,
        n=100,
        runbook_url="https://wiki.example/quality-drop.md",
        started_at=datetime(2026, 11, 3, tzinfo=UTC),
        ci=None,
        incident_key="inc-1",
    )
    return build_notification(alert)


@pytest.fixture
def echo() -> Iterator[str]:
    """A server that answers every request 400, quoting the request back in every field a
    client might copy into an error (Slack's `error`, PagerDuty's `errors`, `message`)."""

    with EchoServer() as server:
        yield server.origin


class EchoServer(FakeHTTPServer):
    """Answers 400 with the whole request quoted in `error`, `message` and `errors`."""

    def answer(self, request: Request) -> Reply:
        quoted = f"{request.method} {request.path} {request.headers} {request.raw!r}"
        return Reply(400, {"ok": False, "error": quoted, "message": quoted, "errors": [quoted]})


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def build(name: str, base: str, tmp_path: Path) -> Any:
    """The bug queue gets a store that is down (its outage); the others a working one."""
    kind, section, extra = receivers(base)[name]
    store = f"sqlite:///{tmp_path / 'store.db'}"
    if kind == "bug_queue":
        store = f"postgresql+psycopg://vigil:{STORE_PASSWORD}@127.0.0.1:1/vigil"
    else:
        upgrade(make_engine(store))
    data = config_dict(store, "sqlite://")
    data["receivers"] = {name: {kind: section}}
    data["routing"] = {"default": [name]}
    config = build_config(data, env={**ENV, **extra})
    return build_notifiers(config, tmp_path)[name]


def assert_clean(err: DeliveryError) -> None:
    rendered = "".join(traceback.format_exception(err)) + repr(err) + str(err)
    for secret in SECRETS:
        assert secret not in rendered, (secret, str(err))
    assert err.__cause__ is None and err.__context__ is None


CASES = list(receivers("http://x"))


@pytest.mark.parametrize("name", CASES)
def test_errors_from_a_hostile_server_carry_no_secret(name: str, echo: str, tmp_path: Path) -> None:
    """Whatever the server echoes, the error names the problem and not the secret."""
    notifier = build(name, echo, tmp_path)
    with pytest.raises(DeliveryError) as caught:
        notifier.send(notification())
    assert_clean(caught.value)
    for secret in SECRETS:
        assert secret not in repr(notifier)


@pytest.mark.parametrize("name", CASES)
def test_unreachable_receivers_are_retryable_and_carry_no_secret(name: str, tmp_path: Path) -> None:
    """Nothing listening (or, for the bug queue, no store) is an outage: retry later."""
    notifier = build(name, closed_port(), tmp_path)
    with pytest.raises(DeliveryError) as caught:
        notifier.send(notification())
    assert caught.value.retryable is True
    assert_clean(caught.value)
