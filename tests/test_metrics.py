"""What `/metrics`, `/healthz`, `/readyz` and the logs tell an operator, checked in-process.

A breaching model is ticked at a known time on SQLite and PostgreSQL, then scraped through the
collector with the same clock: every SLI with its n, statuses, objectives, budget and burn
rates, incidents, outbox, read lag and health come out with bounded labels (no segment
values), and `promtool check metrics` accepts the exposition. The probes answer JSON that
names the problem; the logs are JSON (or readable lines) with every secret masked.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alerts.notifiers.base import DeliveryError, Notification
from monitor.core.clock import SimulatedClock
from monitor.core.redact import Redactor
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import tick
from monitor.service.daemon import Daemon
from monitor.service.logs import configure
from monitor.service.metrics import DaemonMetrics, StoreCollector, build_registry, instrument
from monitor.store.db import make_engine, session_factory
from monitor.store.slis import slo_id
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    build_config,
    config_dict,
    create_source,
    hourly,
)
from tests.test_daemon import get, wait_for

NOW = T0 + timedelta(hours=2)
SECRET = "hunter2-pa55word"
Scrape = dict[str, list[tuple[dict[str, str], float]]]


def scrape(registry: CollectorRegistry) -> tuple[str, Scrape]:
    text = generate_latest(registry).decode()
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return text, out


def breaching_runtime(
    store: str, source: str, state_dir: Path, public_url: str | None = None
) -> Runtime:
    """A model with 40 wrong predictions (the newest at T0+39m, labelled at T0+40m), three
    SLOs: accuracy with burn alerts, PSI on every feature, accuracy per country segment;
    `public_url` is the daemon's `server.public_url` (alerts then link evidence pages)."""
    engine = create_source(source)
    ids = add_predictions(engine, 1, hourly(T0, 40), score=0.9)
    add_labels(engine, [(i, T0 + timedelta(minutes=40), 0) for i in ids])
    engine.dispose()
    data = config_dict(store, source)
    model = data["models"]["m"]
    model["predictions"]["segments"] = ["country"]
    model["slos"][0]["burn_alerts"] = "default"
    model["slos"] += [
        {"metric": "drift.psi", "features": "all", "window": "24h", "objective": "< 0.2"},
        {
            "metric": "accuracy",
            "objective": ">= 0.9",
            "segment_by": "country",
            "min_samples": 5,
            "name": "accuracy-by-country",
        },
    ]
    data["routing"]["group_wait"] = "0s"
    data["server"] = {"host": "127.0.0.1", "port": 0}  # any free port
    if public_url is not None:
        data["server"]["public_url"] = public_url
    return open_runtime(build_config(data), state_dir)


@pytest.fixture
def runtime(two_db_urls: tuple[str, str], tmp_path: Path) -> Iterator[Runtime]:
    rt = breaching_runtime(*two_db_urls, tmp_path)
    yield rt
    rt.close()


def test_scrape_exports_each_sli_status_budget_and_health_with_bounded_labels(
    runtime: Runtime,
) -> None:
    tick(runtime, "m", NOW)
    registry, _ = build_registry(runtime.sessions, runtime.config, SimulatedClock(NOW), ["m"])
    text, found = scrape(registry)
    accuracy = slo_id(runtime.config.models["m"].slos[0])
    psi = slo_id(runtime.config.models["m"].slos[1])
    key = {"model": "m", "slo": accuracy, "metric": "accuracy", "window": "24h", "feature": ""}

    assert found["vigil_store_up"] == [({}, 1.0)]
    assert (key, 0.0) in found["vigil_sli_value"]
    assert (key, 40.0) in found["vigil_sli_samples"]
    status = {s["status"]: v for s, v in found["vigil_slo_status"] if s["slo"] == accuracy}
    assert status == {"ok": 0.0, "breach": 1.0, "uncertain": 0.0, "insufficient_data": 0.0}
    assert {s["feature"] for s, _ in found["vigil_sli_value"] if s["slo"] == psi} == {
        "amount",
        "country",
    }
    objective = {k: v for k, v in key.items() if k != "feature"}
    assert (objective, 0.9) in found["vigil_slo_objective"]
    [(_, budget)] = [v for v in found["vigil_slo_error_budget_remaining"] if v[0] == key]
    assert budget < 0  # one bad evaluation out of one overspends a 99% target
    windows = {s["burn_window"] for s, _ in found["vigil_slo_burn_rate"] if s["slo"] == accuracy}
    assert windows == {"5m", "30m", "1h", "6h", "3d"}

    # Segments are values of a column: counted per status, never a label.
    assert "country=" not in text
    slices = {s["status"]: v for s, v in found["vigil_slo_slices"]}
    assert slices == {"ok": 0.0, "breach": 3.0, "uncertain": 0.0, "insufficient_data": 0.0}

    incidents = {s["severity"]: v for s, v in found["vigil_open_incidents"]}
    assert incidents["page"] >= 1 and incidents["info"] == 0
    assert found["vigil_model_blind"] == [({"model": "m"}, 0.0)]
    outbox = {s["status"]: v for s, v in found["vigil_outbox_messages"] if s["receiver"] == "chat"}
    assert set(outbox) == {"pending", "sent", "failed", "expired"} and outbox["pending"] >= 1
    assert found["vigil_outbox_oldest_pending_age_seconds"] == [({"receiver": "chat"}, 0.0)]
    # Read lag: now minus the newest row read (prediction at T0+39m, label at T0+40m).
    lag = {s["stream"]: v for s, v in found["vigil_source_read_lag_seconds"]}
    assert lag == {"predictions": 81 * 60.0, "labels": 80 * 60.0}
    assert found["vigil_last_successful_tick_timestamp_seconds"] == [
        ({"model": "m"}, NOW.timestamp())
    ]
    assert found["vigil_last_tick_timestamp_seconds"] == [({"model": "m"}, NOW.timestamp())]
    assert found["vigil_model_tick_interval_seconds"] == [({"model": "m"}, 300.0)]
    assert found["vigil_build_info"][0][0]["version"]


def test_promtool_accepts_the_exposition(runtime: Runtime) -> None:
    tick(runtime, "m", NOW)
    registry, metrics = build_registry(runtime.sessions, runtime.config, SimulatedClock(NOW), ["m"])
    metrics.tick_duration.labels("m").observe(0.2)
    metrics.tick_failures.labels("m").inc()
    metrics.leases.labels("model:m").set(1)
    metrics.notifications.labels("chat", "sent").inc()
    text = generate_latest(registry).decode()
    assert "vigil_tick_duration_seconds_bucket" in text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_a_store_that_does_not_answer_is_a_gauge_not_a_failed_scrape(tmp_path: Path) -> None:
    config = build_config(config_dict("sqlite://", "sqlite://"))
    (tmp_path / "a-directory").mkdir()  # not a database file: every query fails
    broken = session_factory(make_engine(f"sqlite:///{tmp_path / 'a-directory'}"))
    registry = CollectorRegistry()
    registry.register(StoreCollector(broken, config, SimulatedClock(NOW)))
    _, found = scrape(registry)
    assert found["vigil_store_up"] == [({}, 0.0)]
    assert found["vigil_model_tick_interval_seconds"] == [({"model": "m"}, 300.0)]
    assert "vigil_sli_value" not in found


class Flaky:
    def __init__(self) -> None:
        self.answers: list[Exception | None] = [
            None,
            DeliveryError("rate limited", retryable=True),
            DeliveryError("channel_not_found", retryable=False),
        ]

    def send(self, notification: Notification) -> Any:
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer
        return None


def test_delivery_outcomes_are_counted_per_receiver() -> None:
    registry = CollectorRegistry()
    metrics = DaemonMetrics(registry)
    wrapped = instrument({"chat": Flaky()}, metrics)["chat"]
    note: Any = object()
    wrapped.send(note)
    for _ in range(2):
        with pytest.raises(DeliveryError):
            wrapped.send(note)
    _, found = scrape(registry)
    counts = {s["outcome"]: v for s, v in found["vigil_notifications_total"]}
    assert counts == {"sent": 1.0, "retried": 1.0, "failed": 1.0}


# -- probes ------------------------------------------------------------------------------------


def test_probes_answer_json_that_names_the_problem(runtime: Runtime) -> None:
    """/healthz is alive; /readyz is ready after the model ticked and names the model once
    its last tick is older than twice its interval; unknown paths get a 404 listing paths."""
    clock = SimulatedClock(NOW)
    daemon = Daemon(runtime, clock)
    daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.server.server_address[1]}"

        def ticked() -> dict[str, Any] | None:
            answer = get(f"{base}/readyz")
            body = json.loads(answer[2]) if answer and answer[0] == 200 else None
            return body if body and body["models"]["m"]["last_tick_age_s"] is not None else None

        body = wait_for("/readyz 200 after a tick", ticked, 60)
        assert body["status"] == "ready" and body["problems"] == []
        assert body["models"]["m"]["owned_here"] is True
        answer = get(f"{base}/healthz")
        assert answer is not None and answer[0] == 200
        assert json.loads(answer[2])["status"] == "alive"
        metrics = get(f"{base}/metrics")
        assert metrics is not None and metrics[1].startswith("text/plain")
        missing = get(f"{base}/nope")
        assert missing is not None and missing[0] == 404 and "/readyz" in missing[2]

        clock.advance(timedelta(minutes=11))  # two intervals (10m) without a tick
        answer = get(f"{base}/readyz")
        assert answer is not None and answer[0] == 503
        late = json.loads(answer[2])
        assert late["status"] == "not ready"
        assert [p.split(":")[0] for p in late["problems"]] == ["m"]
        assert "limit 600s" in late["problems"][0]
    finally:
        assert daemon.stop() is True
    assert not daemon.scheduler.running


def test_readyz_reports_an_unreachable_store(tmp_path: Path) -> None:
    config = build_config(config_dict(f"sqlite:///{tmp_path}/s.db", "sqlite://"))
    rt = open_runtime(config, tmp_path)
    daemon = Daemon(rt, SimulatedClock(NOW))
    try:
        (tmp_path / "a-directory").mkdir()
        rt.sessions.configure(bind=make_engine(f"sqlite:///{tmp_path / 'a-directory'}"))
        ok, body = daemon.ready()
        assert not ok and body["store"] == "unreachable"
        assert any(p.startswith("store unreachable") for p in body["problems"])
    finally:
        daemon.close()
        rt.close()


# -- logs --------------------------------------------------------------------------------------


@pytest.fixture
def reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_vigil", False):
            root.removeHandler(handler)


def test_json_logs_mask_secrets_everywhere(reset_logging: None) -> None:
    """Structlog events (nested fields and tracebacks included) and library log records come
    out as one JSON object per line, and a configured secret appears in none of them."""
    config = build_config(
        config_dict("sqlite://", f"postgresql://vigil:{SECRET}@db.internal/shop"),
    )
    out = io.StringIO()
    configure(json_output=True, redact=Redactor(config), stream=out)
    log = structlog.get_logger("test")
    log.info("connecting", url=f"postgresql://vigil:{SECRET}@db.internal/shop")
    log.warning("nested", detail={"dsn": [f"password={SECRET}"]})
    try:
        raise RuntimeError(f"login failed with {SECRET}")
    except RuntimeError:
        log.exception("boom")
    logging.getLogger("apscheduler.scheduler").warning("job failed: %s", SECRET)

    lines = out.getvalue().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["connecting", "nested", "boom", "job failed: ***"]
    assert SECRET not in out.getvalue()
    assert events[0]["url"] == "***"  # the whole source URL is a secret
    assert events[1]["detail"] == {"dsn": ["password=***"]}
    assert "RuntimeError: login failed with ***" in events[2]["exception"]
    assert events[3]["logger"] == "apscheduler.scheduler" and events[3]["level"] == "warning"


def test_console_logs_are_lines_for_people(reset_logging: None) -> None:
    out = io.StringIO()
    configure(json_output=False, stream=out)
    structlog.get_logger().info("tick", model="m", duration_s=0.25)
    line = out.getvalue().strip()
    assert not line.startswith("{")
    assert "tick" in line and "model=m" in line and "duration_s=0.25" in line


def test_each_tick_logs_one_line_with_counts_and_duration(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, reset_logging: None
) -> None:
    """One `tick` event per tick; a failing tick logs one `tick failed` with the error
    redacted, even when a driver echoes the connection URL with its password."""
    daemon = Daemon(runtime, SimulatedClock(NOW))
    try:
        with structlog.testing.capture_logs() as events:
            daemon.run_tick("m")
        [line] = [e for e in events if e["event"] == "tick"]
        assert line["model"] == "m" and line["predictions"] == 40 and line["labels"] == 40
        assert line["slos"] == 1 + 2 + 3  # accuracy, PSI of two features, three segments
        assert line["breaches"] == 4 and line["opened"] == 4 and line["duration_s"] > 0

        source_url = runtime.config.sources["src"].url.get_secret_value()

        def leaky(*_: Any) -> None:
            raise ConnectionError(f"could not connect to {source_url}")

        monkeypatch.setattr("monitor.service.ticking.tick", leaky)
        out = io.StringIO()
        configure(json_output=True, redact=runtime.redact, stream=out)
        daemon.run_tick("m")
        [failed] = [json.loads(x) for x in out.getvalue().splitlines() if '"tick failed"' in x]
        assert failed["error"] == "ConnectionError: could not connect to ***"
        assert failed["consecutive_failures"] == 1 and failed["level"] == "warning"
        assert source_url not in out.getvalue()
    finally:
        daemon.close()
