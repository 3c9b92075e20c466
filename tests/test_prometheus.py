"""A real Prometheus (the Debian `prometheus` package) scraping a real `vigil run`.

Prometheus scrapes every two seconds and evaluates a copy of deploy/prometheus/rules.yml
with unchanged expressions and near-zero `for:` durations. Checked through its HTTP API: the
SLI series arrive with their labels and n, every rule evaluates without error, every
dashboard query runs, the breached SLO fires VigilSLOBreached (and its budget rules), and
once Vigil is stopped the dead man's switch (VigilNotTicking) and VigilDown fire.
"""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import write_config
from tests.test_daemon import SLO, VIGIL, env, free_port, get, make_config, wait_for, write_source
from tests.test_deploy import PROM, as_promql, dashboard_exprs

WAIT = 90.0


class Prometheus:
    def __init__(self, base: str, proc: subprocess.Popen[bytes], log: Path):
        self.base, self.proc, self.log = base, proc, log

    def api(self, path: str, **params: str) -> Any:
        """The `data` of an API answer; fails the test on an API error."""
        if self.proc.poll() is not None:
            pytest.fail(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        answer = get(f"{self.base}/api/v1/{path}{query}")
        assert answer is not None, f"prometheus did not answer {path}"
        body = json.loads(answer[2])
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self, state: str = "firing") -> list[dict[str, str]]:
        return [a["labels"] for a in self.api("alerts")["alerts"] if a["state"] == state]


def rules_for_test(target: Path) -> list[str]:
    """The shipped rules with the same expressions and short `for:` durations; returns the
    group names. Rules on `up` keep 10 s, so one scrape slowed by a busy machine is no
    outage, as in production."""
    data = yaml.safe_load((PROM / "rules.yml").read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            rule["for"] = "10s" if "up{" in rule["expr"] else "0s"
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return [g["name"] for g in data["groups"]]


@pytest.fixture
def vigil(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`vigil run` on a breaching model (40 wrong predictions in the last hour), ticking every
    second, with the SRE workbook's burn-rate windows on its SLO."""
    write_source(
        f"sqlite:///{tmp_path / 'source.db'}",
        datetime.now(UTC) - timedelta(minutes=50),
        correct=False,
    )
    port = free_port()
    data = make_config(tmp_path, schedule="1s")
    data["models"]["m"]["slos"][0]["burn_alerts"] = "default"
    data["server"] = {"host": "127.0.0.1", "port": port, "shutdown_timeout": "5s"}
    data["routing"]["group_wait"] = "0s"
    config = write_config(tmp_path / "vigil.yaml", data)
    with (tmp_path / "vigil.log").open("wb") as log:
        proc = subprocess.Popen(
            [VIGIL, "run", "--config", str(config), "--log-format", "json"],
            cwd=tmp_path,
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def prometheus(
    tmp_path: Path, vigil: tuple[subprocess.Popen[bytes], int]
) -> Iterator[tuple[Prometheus, list[str]]]:
    _, vigil_port = vigil
    groups = rules_for_test(tmp_path / "rules.yml")
    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {
                "job_name": "vigil",
                "scrape_timeout": "2s",
                "static_configs": [{"targets": [f"127.0.0.1:{vigil_port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_for(
            "prometheus ready",
            lambda: True if (a := get(f"{server.base}/-/ready")) and a[0] == 200 else None,
            WAIT,
        )
        yield server, groups
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_prometheus_scrapes_vigil_and_the_shipped_rules_fire(
    vigil: tuple[subprocess.Popen[bytes], int], prometheus: tuple[Prometheus, list[str]]
) -> None:
    proc, port = vigil
    prom, groups = prometheus

    # The SLI and its sample size, as Prometheus stored them.
    def sli() -> list[dict[str, Any]] | None:
        if proc.poll() is not None:
            pytest.fail(f"vigil run exited with {proc.returncode}")
        found = prom.query(f'vigil_sli_value{{slo="{SLO}"}}')
        return found or None

    [series] = wait_for("vigil_sli_value in prometheus", sli, WAIT)
    assert series["metric"] == {
        "__name__": "vigil_sli_value",
        "job": "vigil",
        "instance": series["metric"]["instance"],
        "model": "m",
        "slo": SLO,
        "metric": "accuracy",
        "window": "24h",
    }
    assert float(series["value"][1]) == 0.0
    [n] = prom.query(f'vigil_sli_samples{{slo="{SLO}"}}')
    assert float(n["value"][1]) == 40.0

    # Every shipped rule is loaded and evaluates without error.
    def evaluated() -> list[dict[str, Any]] | None:
        loaded = prom.api("rules")["groups"]
        rules = [r for g in loaded for r in g["rules"]]
        return loaded if rules and all(r["health"] == "ok" for r in rules) else None

    loaded = wait_for("every rule evaluated", evaluated, WAIT)
    assert [g["name"] for g in loaded] == groups

    # The breached SLO fires, and so do its budget rules; nothing says Vigil is down.
    expected = {
        ("VigilSLOBreached", "m", SLO),
        ("VigilErrorBudgetFastBurn", "m", SLO),
        ("VigilErrorBudgetExhausted", "m", SLO),
    }

    def firing() -> set[tuple[str, str, str]] | None:
        found = {(a["alertname"], a.get("model", ""), a.get("slo", "")) for a in prom.alerts()}
        return found if expected <= found else None

    found = wait_for("the SLO alerts firing", firing, WAIT)
    assert {name for name, _, _ in found} == {name for name, _, _ in expected}
    [breached] = [a for a in prom.alerts() if a["alertname"] == "VigilSLOBreached"]
    assert breached["severity"] == "ticket" and breached["metric"] == "accuracy"

    # Every dashboard query runs; the main panels have data.
    for expr in dashboard_exprs():
        prom.query(as_promql(expr))  # fails the test on a query error
    for expr in (
        "max by (model, slo) (vigil_slo_objective)",
        "time() - max by (model) (vigil_last_tick_timestamp_seconds)",
        'max by (model, slo, feature, status) (vigil_slo_status{model=~".*"}) == 1',
        "sum by (severity) (max by (model, severity) (vigil_open_incidents))",
    ):
        assert prom.query(expr), expr

    # What Prometheus scraped passes promtool's lint as well.
    scraped = get(f"http://127.0.0.1:{port}/metrics")
    assert scraped is not None and scraped[0] == 200
    lint = subprocess.run(
        ["promtool", "check", "metrics"],
        input=scraped[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout

    # Vigil stops: its ticks stop, and the dead man's switch fires for the model.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0

    def dead() -> set[tuple[str, str]] | None:
        found = {(a["alertname"], a.get("model", "")) for a in prom.alerts()}
        return found if {("VigilNotTicking", "m"), ("VigilDown", "")} <= found else None

    wait_for("VigilNotTicking and VigilDown firing", dead, WAIT)


def test_prometheus_scrapes_vigil_over_tls_with_basic_auth(tmp_path: Path) -> None:
    """`vigil run --web-config-file` with TLS and a bcrypt user; Prometheus scrapes it with the
    `basic_auth` and `tls_config` of deploy/prometheus/prometheus.yml's commented example:
    the right password is `up`, a wrong one is not."""
    import bcrypt

    from tests.test_http import self_signed

    cert, _ = self_signed(tmp_path)
    hashed = bcrypt.hashpw(b"scrape-me", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(
        "tls_server_config: {cert_file: tls.crt, key_file: tls.key}\n"
        f"basic_auth_users: {{prometheus: '{hashed}'}}\n"
    )
    start = datetime.now(UTC) - timedelta(minutes=50)
    write_source(f"sqlite:///{tmp_path / 'source.db'}", start, correct=True)
    vigil_port, prom_port = free_port(), free_port()
    data = make_config(tmp_path, schedule="1s")
    data["server"] = {"host": "127.0.0.1", "port": vigil_port, "shutdown_timeout": "5s"}
    config = write_config(tmp_path / "vigil.yaml", data)
    job = {
        "scheme": "https",
        "scrape_timeout": "2s",
        "tls_config": {"ca_file": str(cert)},
        "static_configs": [{"targets": [f"127.0.0.1:{vigil_port}"]}],
    }
    scrape = {
        "global": {"scrape_interval": "2s"},
        "scrape_configs": [
            {
                **job,
                "job_name": "vigil",
                "basic_auth": {"username": "prometheus", "password": "scrape-me"},
            },
            {
                **job,
                "job_name": "wrong",
                "basic_auth": {"username": "prometheus", "password": "nope"},
            },
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(scrape))
    with (tmp_path / "vigil.log").open("wb") as out:
        vigil = subprocess.Popen(
            [VIGIL, "run", "--config", str(config), "--web-config-file", str(tmp_path / "web.yml")],
            cwd=tmp_path, env=env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    prom = Prometheus(f"http://127.0.0.1:{prom_port}", proc, log)
    try:

        def scraped() -> dict[str, float] | None:
            if vigil.poll() is not None:
                pytest.fail(f"vigil run exited:\n{(tmp_path / 'vigil.log').read_text()[-3000:]}")
            ready = get(f"{prom.base}/-/ready")
            if ready is None or ready[0] != 200:
                return None
            up = {r["metric"]["job"]: float(r["value"][1]) for r in prom.query("up")}
            sli = prom.query('vigil_sli_value{job="vigil"}')
            errors = {
                t["labels"]["job"]: t["lastError"] for t in prom.api("targets")["activeTargets"]
            }
            refused = "401" in errors.get("wrong", "")  # once Vigil listens, not before
            return up if len(up) == 2 and up["vigil"] == 1.0 and sli and refused else None

        up = wait_for("an authenticated TLS scrape and a refused one", scraped, WAIT)
        assert up == {"vigil": 1.0, "wrong": 0.0}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        vigil.send_signal(signal.SIGTERM)
        vigil.wait(timeout=60)
