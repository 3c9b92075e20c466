"""Evidence for drift incidents: an Evidently report rendered on a bounded sample and linked
from the alert, without ever failing the tick that opened the incident."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy import select
from structlog.testing import capture_logs

from alerts import evidence
from alerts.evidence import render_drift_report
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import tick
from monitor.store.tables import Incident, OutboxMessage
from tests.builders import T0, add_predictions, build_config, config_dict, create_source, hourly

DRIFT_SLO = {
    "metric": "drift.psi",
    "features": ["amount"],
    "window": "24h",
    "objective": "< 0.2",
    "severity": "ticket",
    "min_samples": 20,
}


def path_of(url: str) -> Path:
    return Path(url2pathname(urlsplit(url).path))


def drift_verdicts(html: str) -> dict[str, str]:
    """Column -> Evidently's verdict ("Detected" / "Not Detected"), read from the report's
    embedded widget data (each column's entry names it, then gives its `data_drift`)."""
    verdicts: dict[str, str] = {}
    for match in re.finditer(r'"column_name": "([^"]+)"', html):
        verdict = re.compile(r'"data_drift": "([A-Za-z ]+)"').search(html, match.end())
        if verdict is not None:
            verdicts.setdefault(match.group(1), verdict.group(1))
    return verdicts


def test_the_report_shows_the_drifted_column(tmp_path: Path) -> None:
    """A shifted numeric column and an unchanged categorical one: the report is written,
    names both, and finds drift in the shifted one only."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"amount_eur": rng.normal(0, 1, 800), "country": rng.choice(["DE", "FR"], 800)}
    )
    current = pd.DataFrame(
        {"amount_eur": rng.normal(3, 1, 800), "country": reference["country"].to_numpy()}
    )

    out = render_drift_report(current, reference, tmp_path / "a" / "report.html", ["country"])

    html = out.read_text(encoding="utf-8")
    assert drift_verdicts(html) == {"amount_eur": "Detected", "country": "Not Detected"}


def test_nothing_to_compare_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no rows"):
        render_drift_report(pd.DataFrame({"x": []}), pd.DataFrame({"x": [1.0]}), tmp_path / "r")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A model whose `amount` is ten times its reference for the last four hours."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source = create_source(source_url, n_reference=400)
    add_predictions(source, 1, hourly(T0, 240), amount_scale=10.0)
    source.dispose()
    data = config_dict(f"sqlite:///{tmp_path / 'store.db'}", source_url, slos=[DRIFT_SLO])
    data["routing"]["group_wait"] = "0s"
    rt = open_runtime(build_config(data), tmp_path / "state")
    yield rt
    rt.close()


def test_window_frame_is_a_bounded_sample_of_the_newest_rows(runtime: Runtime) -> None:
    source = runtime.source_for("m")
    frame = source.window_frame(T0, T0 + timedelta(hours=4), 50)
    assert len(frame) == 50
    assert list(frame.columns) == ["amount", "country", "@score", "@prediction"]
    with sa.create_engine(str(source.engine.url)).connect() as conn:
        newest = conn.execute(sa.text("SELECT amount FROM predictions ORDER BY request_id DESC"))
        assert frame["amount"].tolist() == [row[0] for row in newest.fetchmany(50)]
    assert len(source.reference_frame(limit=100)) == 100


def test_a_drift_incident_links_its_report(runtime: Runtime) -> None:
    """The tick that opens the drift incident renders the report into the state folder's
    artifacts and its first notification already carries the link."""
    tick(runtime, "m", T0 + timedelta(hours=4))

    with runtime.sessions() as session:
        [incident] = session.scalars(select(Incident))
        [message] = session.scalars(select(OutboxMessage))
    assert incident.kind == "feature_drift" and incident.feature == "amount"
    url = incident.alert["report_url"]
    assert url.startswith("file://")
    report = path_of(url)
    assert report.parent == (runtime.state_dir / "artifacts").resolve()
    assert drift_verdicts(report.read_text(encoding="utf-8"))["amount"] == "Detected"
    assert message.payload["alerts"][0]["report_url"] == url


def test_a_failing_report_never_fails_the_tick(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evidently blowing up is logged; the incident and its notification go out without a link."""

    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("evidently exploded")

    monkeypatch.setattr(evidence, "render_drift_report", broken)
    with capture_logs() as logs:
        result = tick(runtime, "m", T0 + timedelta(hours=4))

    assert [c.event for c in result.changes] == ["open"]
    with runtime.sessions() as session:
        [incident] = session.scalars(select(Incident))
        [message] = session.scalars(select(OutboxMessage))
    assert incident.alert.get("report_url") is None
    assert message.payload["alerts"][0]["report_url"] is None
    [warning] = [e for e in logs if e["event"] == "drift report not rendered"]
    assert "evidently exploded" in warning["error"]
