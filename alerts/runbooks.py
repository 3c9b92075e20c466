"""Every alert kind Vigil can raise, and the runbook page that tells on-call what to do about it."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: Alert kind -> runbook file in `runbooks/`. A test checks that every file exists.
RUNBOOKS: dict[str, str] = {
    "quality_drop": "quality-drop.md",
    "estimated_quality_drop": "estimated-quality-drop.md",
    "feature_drift": "feature-drift.md",
    "prediction_drift": "prediction-drift.md",
    "missing_values": "missing-values.md",
    "schema_change": "schema-change.md",
    "stale_predictions": "stale-predictions.md",
    "stale_labels": "stale-labels.md",
    "volume_anomaly": "volume-anomaly.md",
    "monitoring_blind": "monitoring-blind.md",
    "error_budget_burn": "error-budget-burn.md",
}

#: Prometheus rule on Vigil itself -> its page, for the rules that are not an alert kind
#: (`deploy/prometheus/rules.yml`; the others link to the kind's page). A test checks both.
SELF_RUNBOOKS: dict[str, str] = {
    "VigilInstanceDown": "vigil-instance-down.md",
    "VigilOutboxStuck": "notifications-not-leaving.md",
    "VigilNotificationsFailing": "notifications-not-leaving.md",
}

SERVED_PREFIX = "/runbooks/"
"""Where the daemon's HTTP server serves the pages (`/runbooks/<page>`), so a link built from
Vigil's own address resolves wherever Vigil runs."""

PACKAGE = "vigil_runbooks"
"""The repository's top-level `runbooks/`, installed under this name (see setup.py), so the
default links resolve in a wheel or a container as well as in a checkout."""


def bundled_dir() -> Path:
    """The directory the runbook pages are installed in, found through the import system;
    in a checkout whose editable install predates the package, the checkout's `runbooks/`."""
    try:
        return Path(str(files(PACKAGE).joinpath("README.md"))).resolve().parent
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "runbooks"


BUNDLED_DIR = bundled_dir()


def bundled_pages() -> dict[str, Path]:
    """Every page, by file name."""
    return {page.name: page for page in sorted(BUNDLED_DIR.glob("*.md"))}


def runbook_url(kind: str, base_url: str | None) -> str:
    """The link an alert carries; `base_url` points at the team's wiki or repository copy."""
    page = RUNBOOKS.get(kind, "README.md")
    if base_url:
        return base_url.rstrip("/") + "/" + page
    return (BUNDLED_DIR / page).as_uri()
