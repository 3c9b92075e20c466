"""Runbooks: a page for every alert kind Vigil can raise, and every alert's link resolves."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

from alerts.burn import KIND as BURN_KIND
from alerts.incidents import alert_for
from alerts.notifiers.registry import META_KIND
from alerts.runbooks import BUNDLED_DIR, RUNBOOKS, SELF_RUNBOOKS, runbook_url
from detectors.registry import METRICS
from monitor.config.models import SLOConfig
from monitor.core.values import MetricValue
from monitor.store.slis import Verdict
from tests.builders import build_config, config_dict

SECTIONS = (
    "What this alert means",
    "Confirm it",
    "Likely causes",
    "Mitigations",
    "When to escalate",
)
#: Kinds raised outside the detectors: burn-rate alerts, a blind monitor or receiver, and
#: drift of the score or decision (a drift metric on `@score` / `@prediction`).
EXTRA_KINDS = {BURN_KIND, META_KIND, "monitoring_blind", "prediction_drift"}
RAISABLE = sorted({info.kind for info, _ in METRICS.values()} | EXTRA_KINDS)


@pytest.mark.parametrize("kind", RAISABLE)
def test_every_raisable_kind_has_a_complete_page(kind: str) -> None:
    """Each kind maps to an existing page with the five sections on-call relies on, and its
    "Confirm it" section shows a `vigil` command to run."""
    assert kind in RUNBOOKS, f"no runbook for alert kind {kind!r}"
    page = BUNDLED_DIR / RUNBOOKS[kind]
    text = page.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    for section in SECTIONS:
        assert section in headings, (page.name, section)
    confirm = text.split("## Confirm it", 1)[1].split("\n## ", 1)[0]
    assert "vigil " in confirm, page.name


def test_every_page_is_reachable_and_indexed() -> None:
    """No orphan pages: each file is some kind's runbook, or the page of a Prometheus rule on
    Vigil itself, and listed in runbooks/README.md."""
    pages = {p.name for p in BUNDLED_DIR.glob("*.md")} - {"README.md"}
    assert pages == set(RUNBOOKS.values()) | set(SELF_RUNBOOKS.values())
    index = (BUNDLED_DIR / "README.md").read_text(encoding="utf-8")
    for name in pages:
        assert f"]({name})" in index, name


def test_links_between_pages_resolve() -> None:
    """Relative links inside the runbooks point at pages that exist."""
    for page in BUNDLED_DIR.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text("utf-8")):
            assert (page.parent / target).is_file(), (page.name, target)


def verdict(metric: str, feature: str | None) -> Verdict:
    slo = SLOConfig(metric=metric, objective=">= 0.5")  # type: ignore[arg-type]
    value = MetricValue(metric=metric, value=0.4, n=100, window="24h", feature=feature)
    since = datetime(2026, 11, 3, tzinfo=UTC)
    return Verdict(
        slo=slo, slo_id=f"{metric}@24h", value=value, status="breach", since=since, streak=1
    )


def alerts_of_every_metric(base_url: str | None) -> list[tuple[str, str, str]]:
    """(metric, kind, runbook link) of the alert each metric's breach raises."""
    data = config_dict("sqlite://", "sqlite://")
    if base_url:
        data["runbook_base_url"] = base_url
    config = build_config(data)
    model = config.models["m"]
    found = []
    for metric, (info, _) in METRICS.items():
        features = [None, "@score"] if info.kind == "feature_drift" else [None]
        for feature in features:
            alert = alert_for(config, "m", model, verdict(metric, feature))
            found.append((metric, alert.kind, alert.runbook_url))
    return found


def test_every_alert_links_an_existing_bundled_page() -> None:
    """Without a base URL each alert links the bundled page as a file URL that exists, the
    page of its own kind (drift on the score links the prediction-drift page)."""
    alerts = alerts_of_every_metric(None)
    assert {kind for _, kind, _ in alerts} >= {"feature_drift", "prediction_drift"}
    for metric, kind, url in alerts:
        parts = urlsplit(url)
        assert parts.scheme == "file", metric
        path = Path(url2pathname(parts.path))
        assert path.is_file(), (metric, url)
        assert path.name == RUNBOOKS[kind]
    assert Path(url2pathname(urlsplit(runbook_url(BURN_KIND, None)).path)).is_file()
    assert Path(url2pathname(urlsplit(runbook_url(META_KIND, None)).path)).is_file()


def test_the_base_url_points_links_at_the_team_copy() -> None:
    """With `runbook_base_url`, links are that URL plus an existing page's name."""
    base = "https://wiki.example/ml/runbooks/"
    for metric, kind, url in alerts_of_every_metric(base):
        assert url == base + RUNBOOKS[kind], metric
        assert (BUNDLED_DIR / url.removeprefix(base)).is_file()


def test_an_slo_can_point_at_its_own_runbook() -> None:
    data = config_dict("sqlite://", "sqlite://")
    config = build_config(data)
    own = SLOConfig(
        metric="accuracy",
        objective=">= 0.5",  # type: ignore[arg-type]
        runbook="https://wiki.example/fraud-accuracy",
    )
    chosen = verdict("accuracy", None)
    alert = alert_for(config, "m", config.models["m"], Verdict(**{**vars(chosen), "slo": own}))
    assert alert.runbook_url == "https://wiki.example/fraud-accuracy"


def test_unknown_kinds_fall_back_to_the_index() -> None:
    assert runbook_url("no_such_kind", None).endswith("/runbooks/README.md")
    assert Path(url2pathname(urlsplit(runbook_url("no_such_kind", None)).path)).is_file()
