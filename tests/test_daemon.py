"""The `vigil` command as users and operators run it: real subprocesses, real files, wall clock.

`vigil run` is started with a one-second schedule against a SQLite source whose rows sit just
before now, scraped over HTTP, and stopped with SIGTERM; `vigil check` and bad configs are
judged by their exit codes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config.models import SLOConfig
from monitor.store.slis import slo_id
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    config_dict,
    create_source,
    hourly,
    write_config,
)

VIGIL = str(Path(sys.executable).parent / "vigil")
SLO = slo_id(SLOConfig.model_validate({"metric": "accuracy", "objective": ">= 0.9"}))
WAIT = 30.0
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_source(url: str, start: datetime, *, correct: bool, count: int = 40) -> None:
    """`count` predictions a minute apart from `start` (decision 1), each labelled a minute
    after the last one: all right (accuracy 1) or all wrong (accuracy 0)."""
    engine = create_source(url)
    ids = add_predictions(engine, 1, hourly(start, count), score=0.9)
    label_at = start + timedelta(minutes=count)
    add_labels(engine, [(i, label_at, 1 if correct else 0) for i in ids])
    engine.dispose()


def make_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    data = config_dict(
        f"sqlite:///{tmp_path / 'store.db'}", f"sqlite:///{tmp_path / 'source.db'}", **overrides
    )
    data["receivers"]["chat"]["slack"]["outfile"] = str(tmp_path / "slack.jsonl")
    return data


def env() -> dict[str, str]:
    """The daemon's environment: the checkout under test comes first on its import path (a
    shared virtualenv's editable install may point at another checkout)."""
    out = dict(os.environ)
    out.pop("SLACK_BOT_TOKEN", None)
    root = str(Path(__file__).resolve().parents[1])
    out["PYTHONPATH"] = os.pathsep.join(p for p in (root, out.get("PYTHONPATH")) if p)
    return out


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT) -> T:
    """Call `probe` until it returns something other than None, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def get(url: str) -> tuple[int, str, str] | None:
    """(status, content type, body), or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()
    except OSError:
        return None


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample in a scrape, by sample name."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


# -- vigil run ---------------------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`vigil run` on a breaching model: 40 wrong predictions in the last hour, labelled."""
    now = datetime.now(UTC)
    write_source(f"sqlite:///{tmp_path / 'source.db'}", now - timedelta(minutes=50), correct=False)
    port = free_port()
    data = make_config(tmp_path, schedule="1s")
    data["server"] = {"host": "127.0.0.1", "port": port}
    data["routing"]["group_wait"] = "1s"  # the default 30s would outlast the test's wait
    data["routing"]["group_wait"] = "0s"  # notify on the tick that found the breach
    config = write_config(tmp_path / "vigil.yaml", data)
    with (tmp_path / "daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [VIGIL, "run", "--config", str(config)],
            cwd=tmp_path,
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc, port, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_daemon_serves_metrics_alerts_and_stops_cleanly_on_sigterm(
    daemon: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    """The daemon ticks on schedule, exports the SLI, its status, tick durations and the
    last successful tick on /metrics, answers /healthz with JSON, writes the breach to the
    Slack receiver's outfile, and exits 0 within 15 s of SIGTERM."""
    proc, port, tmp_path = daemon
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "daemon.log"

    def scraped() -> dict[str, list[tuple[dict[str, str], float]]] | None:
        if proc.poll() is not None:
            pytest.fail(f"vigil run exited with {proc.returncode}:\n{log.read_text()}")
        answer = get(f"{base}/metrics")
        if answer is None or answer[0] != 200 or "vigil_sli_value{" not in answer[2]:
            return None
        found = samples(answer[2])
        return found if "vigil_tick_duration_seconds_count" in found else None

    started = time.time()
    metrics = wait_for("vigil_sli_value on /metrics", scraped)

    key = {"model": "m", "slo": SLO, "metric": "accuracy", "window": "24h", "feature": ""}
    assert metrics["vigil_sli_value"] == [(key, 0.0)]
    status = {s[0]["status"]: s[1] for s in metrics["vigil_slo_status"] if s[0]["slo"] == SLO}
    assert status == {"ok": 0.0, "breach": 1.0, "uncertain": 0.0, "insufficient_data": 0.0}
    [(labels, ticks)] = metrics["vigil_tick_duration_seconds_count"]
    assert labels == {"model": "m"} and ticks >= 1
    [(labels, last_ok)] = metrics["vigil_last_successful_tick_timestamp_seconds"]
    assert labels == {"model": "m"}
    assert started - 60 <= last_ok <= time.time() + 1
    assert ("vigil_open_incidents", ({"model": "m", "severity": "page"}, 1.0)) in [
        (name, sample) for name, values in metrics.items() for sample in values
    ]

    health = get(f"{base}/healthz")
    assert health is not None
    code, content_type, body = health
    assert code == 200 and content_type.startswith("application/json")
    assert json.loads(body)["status"] == "alive"

    def ready() -> bool | None:
        answer = get(f"{base}/readyz")
        return True if answer is not None and answer[0] == 200 else None

    wait_for("/readyz to answer 200", ready)

    # The schedule keeps ticking: the tick count grows.
    def more_ticks() -> float | None:
        answer = get(f"{base}/metrics")
        if answer is None:
            return None
        [(_, count)] = samples(answer[2])["vigil_tick_duration_seconds_count"]
        return count if count > ticks else None

    wait_for("a later tick", more_ticks, timeout=15)

    outfile = tmp_path / "slack.jsonl"

    def slack_lines() -> list[dict[str, Any]] | None:
        if not outfile.exists():
            return None
        lines = outfile.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines] if lines else None

    [message] = wait_for("the breach in the Slack outfile", slack_lines)
    assert message["channel"] == "#ml-oncall"
    assert "accuracy" in message["text"] and "thread_ts" not in message
    assert 1 <= len(message["blocks"]) <= 50

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, log.read_text()
    output = log.read_text()
    assert "Traceback" not in output
    # Still exactly one message: ticking for a while did not notify twice.
    assert len(outfile.read_text(encoding="utf-8").splitlines()) == 1


# -- vigil check -------------------------------------------------------------------------------


def run_vigil(
    *args: str, cwd: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VIGIL, *args],
        cwd=cwd,
        env={**env(), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_at_without_offset_is_utc(tmp_path: Path) -> None:
    """`--at` without an offset means UTC, whatever the machine's time zone: on a host at
    UTC+9 the naive time must not move nine hours back to before the data."""
    write_source(f"sqlite:///{tmp_path / 'source.db'}", T0, correct=False)
    config = write_config(tmp_path / "vigil.yaml", make_config(tmp_path))
    at = (T0 + timedelta(hours=2)).replace(tzinfo=None).isoformat()
    result = run_vigil(
        "check", "--config", str(config), "--at", at, cwd=tmp_path, extra_env={"TZ": "JST-9"}
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"m {SLO}: breach (value 0, n=40)" in result.stdout


def test_check_with_a_bad_at_exits_2(tmp_path: Path) -> None:
    """A mistyped `--at` is a usage error (2), never exit 1, which CI would read as a breach."""
    config = write_config(tmp_path / "vigil.yaml", make_config(tmp_path))
    result = run_vigil("check", "--config", str(config), "--at", "yesterday", cwd=tmp_path)
    assert result.returncode == 2
    assert "--at" in result.stderr and "yesterday" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("correct", "code", "status"), [(False, 1, "breach"), (True, 0, "ok")])
def test_check_exit_code_says_whether_an_slo_is_breached(
    tmp_path: Path, correct: bool, code: int, status: str
) -> None:
    """`vigil check` runs one tick and exits 1 on a breach, 0 when every SLO holds, printing
    each SLO's verdict."""
    write_source(f"sqlite:///{tmp_path / 'source.db'}", T0, correct=correct)
    config = write_config(tmp_path / "vigil.yaml", make_config(tmp_path))

    at = (T0 + timedelta(hours=2)).isoformat()
    result = run_vigil("check", "--config", str(config), "--at", at, cwd=tmp_path)

    assert result.returncode == code, result.stdout + result.stderr
    assert f"m {SLO}: {status} (value {0 if not correct else 1}, n=40)" in result.stdout
    assert "Traceback" not in result.stderr
    outfile = tmp_path / "slack.jsonl"
    # The breach is also notified (through the outbox drain at the end of the check).
    assert outfile.exists() == (not correct)


def test_check_with_wall_clock_now(tmp_path: Path) -> None:
    """Without --at, `vigil check` judges as of now: rows from the last hour breach."""
    write_source(
        f"sqlite:///{tmp_path / 'source.db'}",
        datetime.now(UTC) - timedelta(minutes=50),
        correct=False,
    )
    config = write_config(tmp_path / "vigil.yaml", make_config(tmp_path))
    result = run_vigil("check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"m {SLO}: breach" in result.stdout


def _bad_objective(data: dict[str, Any]) -> None:
    data["models"]["m"]["slos"][0]["objective"] = "at least 0.9"


@pytest.mark.parametrize(
    ("command", "mutate", "expected"),
    [
        ("check", _bad_objective, "models.m.slos.0.objective"),
        ("check", lambda d: d["models"]["m"].update(shedule="5m"), "models.m.shedule"),
        ("check", lambda d: d["routing"].update(default=["nobody"]), "nobody"),
        ("check", lambda d: d["models"]["m"]["slos"][0].update(metric="acuracy"), "acuracy"),
        ("run", _bad_objective, "models.m.slos.0.objective"),
    ],
    ids=["bad-objective", "unknown-key", "unknown-receiver", "unknown-metric", "run"],
)
def test_bad_config_exits_2_naming_the_field(
    tmp_path: Path, command: str, mutate: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    """A config error is a one-screen message naming the file and field, exit code 2, no
    traceback, for the daemon as for the check."""
    data = make_config(tmp_path)
    mutate(data)
    config = write_config(tmp_path / "vigil.yaml", data)

    result = run_vigil(command, "--config", str(config), cwd=tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert str(config) in result.stderr
    assert expected in result.stderr
    assert not (tmp_path / "store.db").exists()


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run_vigil("check", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr
