"""Every file in deploy/ checked with the tools available here.

Prometheus config and rules by `promtool` (including its rule unit tests), the systemd unit
by `systemd-analyze verify`, the dashboard's queries by `promtool` too (as recording rules),
every metric the rules and dashboard name against what Vigil really exports, every runbook
link against the repository, the configs inside the compose file and the Kubernetes
ConfigMap by Vigil's own config parser, and the compose demo's data feeder by running it
and ticking the compose config against what it wrote. Docker and a cluster cannot run here:
the Dockerfile and manifests are checked statically (non-root user, healthcheck, probes,
names and ports that agree with each other).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import parse_config
from monitor.core.clock import SimulatedClock
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.service.metrics import build_registry
from tests.test_daemon import VIGIL
from tests.test_metrics import NOW, breaching_runtime

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"
K8S = DEPLOY / "kubernetes"
RUNBOOK_LINK = re.compile(
    r'^\{\{ or \$externalLabels\.vigil_url "(?P<default>[^"]+)" \}\}/runbooks/(?P<page>[\w.-]+)$'
)
SERVED = re.compile(r"https?://[\w.:-]+/runbooks/(?P<page>[\w.-]*)")
METRIC = re.compile(r"\bvigil_[a-z0-9_]+")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((PROM / "rules.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "grafana/dashboards/vigil.json").read_text())
    return data


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def as_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced by what they expand to."""
    return expr.replace("$__rate_interval", "5m").replace("$model", ".*")


def test_every_deploy_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.y*ml"))
    assert len(files) >= 12
    for path in files:
        assert yaml_docs(path), path
    assert dashboard()["panels"]


# -- Prometheus --------------------------------------------------------------------------------


def test_promtool_accepts_config_rules_and_rule_tests() -> None:
    for args in (
        ("check", "config", str(PROM / "prometheus.yml")),
        ("check", "rules", str(PROM / "rules.yml")),
        ("test", "rules", str(PROM / "rules.test.yml")),
    ):
        result = run("promtool", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_every_rule_is_actionable_and_links_a_runbook_that_exists() -> None:
    """Each rule links the page Vigil itself serves at /runbooks/<page>: the external label
    `vigil_url`, else Vigil's default address; the page is a packaged runbook, served by the
    daemon's HTTP server, and the one the rule's alert kind or name maps to."""
    from alerts.runbooks import BUNDLED_DIR, SELF_RUNBOOKS, SERVED_PREFIX
    from monitor.config.models import ServerConfig
    from monitor.service.http import runbook_routes

    served = runbook_routes()
    names = set()
    for rule in rules():
        names.add(rule["alert"])
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        url = rule["annotations"]["runbook_url"]
        link = RUNBOOK_LINK.match(url)
        assert link, url
        assert link["default"] == f"http://localhost:{ServerConfig().port}"
        page = link["page"]
        assert (BUNDLED_DIR / page).is_file(), url
        assert SERVED_PREFIX + page in served, url
        if rule["alert"] in SELF_RUNBOOKS:
            assert page == SELF_RUNBOOKS[rule["alert"]], rule["alert"]
    assert {"VigilSLOBreached", "VigilNotTicking", "VigilDown"} <= names
    assert set(SELF_RUNBOOKS) <= names


def test_every_shipped_link_to_vigil_resolves_to_a_served_runbook() -> None:
    """No placeholder repository anywhere in deploy/; every Vigil address that links a runbook
    there (systemd's Documentation=, compose's runbook_base_url, the rule tests' expected
    links) names a page the daemon serves."""
    from alerts.runbooks import RUNBOOKS, runbook_url
    from monitor.service.http import runbook_routes

    served = runbook_routes()
    found = 0
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "github.com/example/vigil" not in text, path
        for match in SERVED.finditer(text):
            found += 1
            assert "/runbooks/" + match["page"] in served, (path, match[0])
    assert found >= 7  # the rule tests and systemd; the rules themselves: test above
    # the compose stack's own alerts link the same pages, as alerts/runbooks.py builds them
    base = yaml.safe_load((DEPLOY / "compose/vigil.yaml").read_text())["runbook_base_url"]
    for kind in RUNBOOKS:
        link = SERVED.fullmatch(runbook_url(kind, base))
        assert link and "/runbooks/" + link["page"] in served, kind


def test_the_prometheusrule_carries_the_same_rules() -> None:
    [doc] = yaml_docs(K8S / "prometheusrule.yaml")
    assert doc["kind"] == "PrometheusRule"
    assert doc["spec"]["groups"] == yaml.safe_load((PROM / "rules.yml").read_text())["groups"]


def test_every_metric_named_in_rules_and_dashboard_is_exported(tmp_path: Path) -> None:
    """Names are compared with a real scrape of a store holding every kind of series."""
    rt = breaching_runtime(
        f"sqlite:///{tmp_path / 'store.db'}", f"sqlite:///{tmp_path / 'source.db'}", tmp_path
    )
    try:
        tick(rt, "m", NOW)
        registry, metrics = build_registry(rt.sessions, rt.config, SimulatedClock(NOW), ["m"])
        metrics.tick_duration.labels("m").observe(1.0)
        metrics.leases.labels("model:m").set(1)
        metrics.notifications.labels("chat", "sent").inc()
        exported = {
            sample.name
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples
        }
    finally:
        rt.close()
    texts = {
        "rules.yml": (PROM / "rules.yml").read_text(),
        "rules.test.yml": (PROM / "rules.test.yml").read_text(),
        "vigil.json": "\n".join(dashboard_exprs()),
    }
    for name, text in texts.items():
        named = set(METRIC.findall(text.replace("vigil_url", "")))  # a label, not a metric
        assert named, name
        assert named <= exported, f"{name} names metrics Vigil does not export: {named - exported}"


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    check = tmp_path / "dashboard-rules.yml"
    records = [
        {"record": f"dashboard:query_{i}", "expr": as_promql(e)} for i, e in enumerate(exprs)
    ]
    check.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = run("promtool", "check", "rules", str(check))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_shows_slis_budgets_incidents_and_ticks() -> None:
    board = dashboard()
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"] and set(panel["gridPos"]) == {"h", "w", "x", "y"}
    shown = "\n".join(dashboard_exprs())
    for metric in (
        "vigil_sli_value",
        "vigil_slo_objective",
        "vigil_slo_error_budget_remaining",
        "vigil_slo_burn_rate",
        "vigil_open_incidents",
        "vigil_tick_duration_seconds_bucket",
        "vigil_last_tick_timestamp_seconds",
    ):
        assert metric in shown
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"DS_PROMETHEUS", "model"}


# -- Docker and compose ------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(instruction, arguments) per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), args.strip()))
    return stages


def test_dockerfile_is_small_non_root_and_healthchecked() -> None:
    stages = dockerfile_stages()
    assert len(stages) == 2  # a build stage, and a runtime stage without the toolchain
    for stage in stages:
        image = stage[0][1].split()[0]
        assert ":" in image and not image.endswith(":latest"), image
        assert "slim" in image
    final = dict(stages[-1])
    user = final["USER"].split(":")[0]
    assert user.isdigit() and int(user) > 0  # numeric, so runAsNonRoot can check it
    assert '"vigil", "health"' in final["HEALTHCHECK"]  # tests/test_health_cli.py
    assert final["EXPOSE"] == "9464"
    assert json.loads(final["ENTRYPOINT"]) == ["vigil"]
    assert json.loads(final["CMD"])[:3] == ["run", "--config", "/etc/vigil/vigil.yaml"]
    for instruction, args in stages[0] + stages[1]:
        if instruction == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    assert "!monitor/**" in ignore and ".venv" not in ignore.replace("**", "")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def test_compose_starts_vigil_with_postgres_prometheus_grafana_and_demo_data() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "demo-data", "vigil", "prometheus", "grafana"}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
    vigil = services["vigil"]
    env = {k: ("" if v.startswith("${") else v) for k, v in vigil["environment"].items()}
    config_file = DEPLOY / "compose/vigil.yaml"
    config = parse_config(config_file.read_text(), str(config_file), env)
    assert config.server.host == "0.0.0.0"
    assert vigil["ports"] == [f"{config.server.port}:{config.server.port}"]
    scrape = yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"]
    assert scrape[0]["static_configs"][0]["targets"] == [f"vigil:{config.server.port}"]
    assert scrape[0]["job_name"] == "vigil"  # the rules select job="vigil"
    [source] = yaml_docs(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    assert source["datasources"][0]["url"] == "http://prometheus:9090"


def load_feeder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("feed", DEPLOY / "compose/feed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compose_demo_feeder_and_config_work_together(tmp_path: Path) -> None:
    """The feeder writes the simulation up to now (never beyond), carries on from where it
    stopped, and the compose config ticks the result without an error."""
    feed = load_feeder()
    shop = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    now = datetime.now(UTC).replace(microsecond=0)
    frames = feed.simulate()
    offset = feed.offset_for(shop, now, 16.4)
    assert feed.offset_for(shop, now + timedelta(hours=5), 3.0) == offset  # stored, reused
    predictions, labels = feed.feed(shop, frames, offset, now)
    assert predictions > 50_000 and labels > 20_000
    assert feed.written_until(shop, "predictions", "predicted_at") <= now
    later = feed.feed(shop, frames, offset, now + timedelta(hours=1))
    assert 0 < later[0] < 1000  # only the next hour
    assert feed.feed(shop, frames, offset, now + timedelta(hours=1)) == (0, 0)
    shop.dispose()

    config_file = DEPLOY / "compose/vigil.yaml"
    env = {
        "VIGIL_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "SHOP_DB_URL": f"sqlite:///{tmp_path / 'shop.db'}",
        "SLACK_BOT_TOKEN": "",
    }
    config = parse_config(config_file.read_text(), str(config_file), env)
    rt = open_runtime(config, tmp_path)
    try:
        result = tick(rt, "fraud-detector", now)
    finally:
        rt.close()
    assert result.predictions_read > 1000 and result.labels_read > 100
    assert {v.status for v in result.verdicts} <= {"ok", "uncertain", "insufficient_data"}


# -- Kubernetes --------------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    found: dict[str, dict[str, Any]] = {}
    for resource in kustomization["resources"]:
        for doc in yaml_docs(K8S / resource):
            assert doc["apiVersion"] and doc["metadata"]["name"]
            found[doc["kind"]] = doc
    return found


def test_kubernetes_manifests_agree_with_each_other_and_with_vigil() -> None:
    docs = manifests()
    assert set(docs) == {
        "Namespace",
        "Secret",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
    }
    secret = docs["Secret"]["stringData"]
    config_text = docs["ConfigMap"]["data"]["vigil.yaml"]
    # Every ${NAME} of the config comes from the Secret, and the config is valid with them.
    assert set(re.findall(r"\$\{(\w+)\}", config_text)) <= set(secret)
    config = parse_config(config_text, "configmap.yaml", secret)
    assert config.store.get_secret_value().startswith("postgresql")  # replicas need PostgreSQL

    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert deployment["spec"]["replicas"] >= 2
    assert (
        pod["metadata"]["labels"].items() >= deployment["spec"]["selector"]["matchLabels"].items()
    )
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == config.server.port and config.server.host == "0.0.0.0"
    for probe, path in (
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe
    security = pod["spec"]["securityContext"]
    dockerfile_user = dict(dockerfile_stages()[-1])["USER"].split(":")[0]
    assert security["runAsNonRoot"] is True and str(security["runAsUser"]) == dockerfile_user
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["envFrom"] == [{"secretRef": {"name": docs["Secret"]["metadata"]["name"]}}]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert container["args"][:3] == ["run", "--config", f"{mounts['config']}/vigil.yaml"]
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace > config.server.shutdown_timeout.total_seconds()

    service = docs["Service"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["metrics"]
    monitor = docs["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["endpoints"]] == [service["spec"]["ports"][0]["name"]]
    assert monitor["endpoints"][0]["path"] == "/metrics"


# -- systemd -----------------------------------------------------------------------------------


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`verify` needs ExecStart's binary to exist: the copy points it at this venv's."""
    unit = (DEPLOY / "systemd/vigil.service").read_text()
    [exec_start] = re.findall(r"^ExecStart=(.+)$", unit, flags=re.MULTILINE)
    binary, *args = exec_start.split()
    assert binary == "/usr/local/bin/vigil"
    assert args[:3] == ["run", "--config", "/etc/vigil/vigil.yaml"]
    real = Path(VIGIL)
    assert real.exists()
    copy = tmp_path / "vigil.service"
    copy.write_text(unit.replace(f"ExecStart={binary}", f"ExecStart={real}"))
    result = run("systemd-analyze", "verify", str(copy))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # warnings (unknown keys, bad values)
    assert "RestartPreventExitStatus=2" in unit and "User=vigil" in unit
