"""The weekly report on a store written by hand, so every expected number is known exactly.

Runs on SQLite and PostgreSQL: attainment (uncertain counts good, insufficient data neither),
the worst feature, budget, incidents of the week (carried over, still open, acknowledged),
bugs, business metrics from the source, weeks in a time zone, the cron trigger, the CLI.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa
import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.config import ConfigError, VigilConfig
from monitor.config.models import SLOConfig
from monitor.core.clock import SimulatedClock
from monitor.engine.runtime import Runtime, open_runtime
from monitor.report.business import business_line
from monitor.report.data import build_report
from monitor.report.names import fmt_value, slo_sentence
from monitor.report.pdf import pdf_available, write_pdf
from monitor.report.schedule import JOB_ID, run_weekly, schedule_weekly, weekly_trigger
from monitor.report.weeks import last_complete_week, parse_week, week_of
from monitor.store.slis import slo_id
from monitor.store.tables import Bug, Incident, SLOEvaluation
from tests.builders import add_predictions, build_config, config_dict, create_source, write_config

UTC_TZ = ZoneInfo("UTC")
W45 = parse_week("2026-W45", UTC_TZ)  # Mon 2 Nov .. Mon 9 Nov 2026
ACCURACY = {"metric": "accuracy", "window": "1h", "objective": ">= 0.9", "target": 0.9,
            "period": "7d", "severity": "page", "min_samples": 20}  # fmt: skip
DRIFT = {"metric": "drift.psi", "features": "all", "window": "1h", "objective": "< 0.2"}
ACC_ID = slo_id(SLOConfig.model_validate(ACCURACY))
DRIFT_ID = slo_id(SLOConfig.model_validate(DRIFT))


@pytest.fixture(autouse=True)
def _fresh_logging() -> None:
    """A CLI test run in-process elsewhere can leave structlog bound to a closed stream."""
    structlog.reset_defaults()


def config(store: str, source: str, tmp_path: Path, **extra: Any) -> VigilConfig:
    data = config_dict(store, source, slos=[ACCURACY, DRIFT], **extra.pop("model", {}))
    data["report"] = {"out_dir": str(tmp_path / "reports"), **extra}
    return build_config(data)


def evaluations(start: datetime, statuses: list[str], feature: str = "") -> list[dict[str, Any]]:
    return [
        {"at": start + timedelta(hours=i + 1), "status": s, "feature": feature, "value": 0.5}
        for i, s in enumerate(statuses)
    ]


def fill_store(rt: Runtime) -> None:
    """W44 all good; W45: accuracy 150 ok, 5 uncertain, 10 breach, 3 insufficient; drift on
    `amount` breached 20 times, `country` never; five incidents around the week."""
    week, before = W45.start, W45.start - timedelta(days=7)
    acc = evaluations(before, ["ok"] * 168)
    acc += evaluations(
        week, ["ok"] * 150 + ["uncertain"] * 5 + ["breach"] * 10 + ["insufficient_data"] * 3
    )
    drift = evaluations(week, ["breach"] * 20 + ["ok"] * 148, "amount")
    drift += evaluations(week, ["ok"] * 168, "country")
    d, day, minute = W45.start, timedelta(days=1), timedelta(minutes=1)
    spans = [  # (opened, acknowledged, resolved, slo)
        (d - 3 * day, d - 3 * day + 30 * minute, d + day, ACC_ID),
        (d + 2 * day, d + 2 * day + 15 * minute, d + 2 * day + 180 * minute, ACC_ID),
        (d + 5 * day, None, None, DRIFT_ID),
        (d + 6 * day, None, d + 8 * day, ACC_ID),
        (d - 5 * day, None, d - 4 * day, ACC_ID),
    ]
    with rt.sessions.begin() as session:
        for row in acc:
            session.add(SLOEvaluation(model="m", slo_id=ACC_ID, n=100, **row))
        for row in drift:
            session.add(SLOEvaluation(model="m", slo_id=DRIFT_ID, n=100, **row))
        for i, (opened, acked, resolved, sid) in enumerate(spans):
            drifted = sid == DRIFT_ID
            alert = {
                "objective": ">= 0.9",
                "runbook_url": "https://runbooks/q",
                "report_url": "https://reports/drift.html" if drifted else None,
            }
            session.add(
                Incident(
                    dedup_key=f"k{i}",
                    model="m",
                    slo_id=sid,
                    metric="drift.psi" if drifted else "accuracy",
                    kind="feature_drift" if drifted else "quality_drop",
                    severity="page",
                    feature="amount" if drifted else "",
                    status="resolved" if resolved else "firing",
                    opened_at=opened,
                    acknowledged_at=acked,
                    resolved_at=resolved,
                    alert=alert,
                )
            )
        session.flush()
        second = session.scalars(sa.select(Incident).where(Incident.dedup_key == "k1")).one()
        session.add(
            Bug(incident_id=second.id, dedup_key="bug-1", title="accuracy dipped", model="m",
                slo_id=ACC_ID, severity="page", evidence={}, runbook_url="", status="closed",
                created_at=d, updated_at=d)
        )  # fmt: skip


@pytest.fixture
def rt(db_url: str, tmp_path: Path) -> Any:
    runtime = open_runtime(config(db_url, f"sqlite:///{tmp_path / 'src.db'}", tmp_path), tmp_path)
    fill_store(runtime)
    yield runtime
    runtime.close()


def test_headline_numbers_follow_the_budget_rule(rt: Runtime) -> None:
    report = build_report(rt, W45, W45.end)
    acc, drift = report.slos
    assert (acc.counts.good, acc.counts.bad, acc.counts.insufficient) == (155, 10, 3)
    assert acc.attainment == pytest.approx(155 / 165)
    assert acc.met is True  # target 0.9
    assert acc.previous == 1.0 and acc.change == pytest.approx(155 / 165 - 1)
    # Period 7d ending with the week: the same good/bad counts, 10% allowed.
    assert acc.budget_left == pytest.approx(1 - (10 / 165) / 0.1)
    assert acc.burn[-1][1] == pytest.approx(acc.budget_left)
    assert drift.feature == "amount" and drift.features == 2
    assert drift.attainment == pytest.approx(148 / 168) and drift.met is False  # target 0.99
    assert drift.previous is None and drift.change is None
    assert report.met == 1 and report.missed == 1
    assert report.verdict == "1 of 2 SLOs met their target, 1 missed; 4 incidents."


def test_incidents_of_the_week_are_as_of_its_end(rt: Runtime) -> None:
    report = build_report(rt, W45, W45.end)
    rows = report.incidents
    assert [r.carried_over for r in rows] == [True, False, False, False]
    first, second, open_one, late = rows
    assert first.time_to_resolve == timedelta(days=4)
    assert second.time_to_acknowledge == timedelta(minutes=15)
    assert second.bugs[0].status == "closed"
    assert open_one.resolved_at is None and open_one.report_url == "https://reports/drift.html"
    assert open_one.duration == timedelta(days=2)
    assert late.resolved_at is None  # resolved only in the next week
    assert report.mtta == timedelta(minutes=(30 + 15) / 2)
    assert report.mttr == (timedelta(days=4) + timedelta(hours=3)) / 2
    drift = report.models[0].drift[0]
    assert [f.feature for f in drift.findings] == ["amount"]
    assert drift.findings[0].since == W45.start + timedelta(hours=1)
    assert drift.findings[0].until == W45.start + timedelta(hours=21)
    assert drift.findings[0].report_urls == ["https://reports/drift.html"]
    assert [name for name, _ in drift.calm] == ["country"]


def test_quiet_week_has_no_incidents_but_open_ones_carry_over(rt: Runtime) -> None:
    report = build_report(rt, parse_week("2026-W41", UTC_TZ), W45.end)
    assert report.incidents == [] and report.mttr is None
    later = build_report(rt, parse_week("2026-W47", UTC_TZ), W45.end)
    assert [(i.id, i.carried_over, i.resolved_at) for i in later.incidents] == [(3, True, None)]
    assert all(s.attainment is None and s.met is None for s in report.slos)
    assert report.verdict == "0 of 2 SLOs met their target, 2 without enough data; no incidents."


def test_html_is_self_contained_and_escaped(rt: Runtime, tmp_path: Path) -> None:
    from monitor.report.deliver import publish

    result = publish(rt, W45, W45.end, send=False)
    html = result.html.read_text(encoding="utf-8")
    assert result.html == tmp_path / "reports" / "slo-report-2026-W45.html"
    assert 'class="headline"' in html and "93.9%" in html and "88.1%" in html  # 155/165, 148/168
    assert "<script" not in html and "stylesheet" not in html
    srcs = [part.split('"', 1)[0] for part in html.split(' src="')[1:]]
    assert srcs and all(src.startswith("data:image/png;base64,") for src in srcs)
    assert "@media print" in html and 'name="viewport"' in html
    assert result.outcomes == []


def test_business_metrics_from_a_column_and_a_query(
    two_db_urls: tuple[str, str], tmp_path: Path
) -> None:
    store, source = two_db_urls
    engine = create_source(source)
    times = [W45.start + timedelta(hours=3 * i) for i in range(56)]  # the week
    times += [W45.start - timedelta(days=3)] * 4  # the week before
    scores = [0.9 if i % 4 == 0 or i >= 56 else 0.1 for i in range(len(times))]
    add_predictions(engine, 1, times, score=scores)
    metrics = [
        {"name": "Declined", "column": "decision", "format": "percent"},
        {"name": "Volume", "query": "SELECT predicted_at, amount FROM predictions "
         "WHERE predicted_at >= :start AND predicted_at < :end", "aggregate": "count"},
        {"name": "Broken", "query": "SELECT nope FROM nowhere"},
    ]  # fmt: skip
    cfg = config(store, source, tmp_path, model={"business_metrics": metrics})
    spec = cfg.models["m"]
    frame = pd.DataFrame({"ts": times, "decision": [int(s >= 0.5) for s in scores]})
    in_week = frame[frame["ts"] >= W45.start]
    declined = business_line(engine, spec, spec.business_metrics[0], W45)
    assert declined.value == pytest.approx(in_week["decision"].mean())
    assert declined.previous == pytest.approx(1.0)  # the 4 rows before all scored 0.9
    assert declined.daily[0][1] == pytest.approx(in_week["decision"][:8].mean())
    assert declined.fmt(0.25) == "25.0%"
    volume = business_line(engine, spec, spec.business_metrics[1], W45)
    assert (volume.value, volume.previous) == (56.0, 4.0)
    assert [v for _, v in volume.daily] == [8.0] * 7
    broken = business_line(engine, spec, spec.business_metrics[2], W45)
    assert broken.value is None and broken.error and "nowhere" in broken.error
    engine.dispose()


def test_weeks_follow_the_report_time_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    week = parse_week("2026-W44", berlin)  # summer time ended on Sun 25 Oct 2026
    assert week.start == datetime(2026, 10, 25, 23, tzinfo=UTC)
    assert week.end == datetime(2026, 11, 1, 23, tzinfo=UTC)
    assert week.previous().label == "2026-W43"
    assert week.previous().start == datetime(2026, 10, 18, 22, tzinfo=UTC)
    assert week_of(datetime(2026, 11, 1, 22, 30, tzinfo=UTC), berlin).label == "2026-W44"
    assert week_of(datetime(2026, 11, 1, 23, 30, tzinfo=UTC), berlin).label == "2026-W45"
    assert last_complete_week(datetime(2026, 11, 2, 8, tzinfo=UTC), berlin).label == "2026-W44"
    assert parse_week("2026w53", berlin).label == "2026-W53"
    for bad in ("2026-W54", "2025-W53", "47", "2026-13"):
        with pytest.raises(ValueError, match="ISO week"):
            parse_week(bad, berlin)


def test_plain_language_names() -> None:
    def sentence(**slo: Any) -> str:
        return slo_sentence(SLOConfig.model_validate(slo))

    assert sentence(metric="accuracy", window="24h", objective=">= 0.85") == (
        "Accuracy stays at or above 85% (24h window)"
    )
    assert sentence(metric="freshness.prediction_age", objective="< 30m") == (
        "Age of the newest prediction stays below 30m"
    )
    assert sentence(metric="drift.psi", features="all", objective="< 0.2") == (
        "Input drift (PSI) stays below 0.2 for every input (24h window)"
    )
    assert sentence(metric="recall", objective=">= 0.85", description="Catches 85% of fraud") == (
        "Catches 85% of fraud"
    )
    assert fmt_value("freshness.prediction_age", 21600) == "6h"
    assert fmt_value("roc_auc", 0.8512) == "0.851"


def test_report_config_is_validated(tmp_path: Path) -> None:
    base = config_dict("sqlite://", "sqlite://")
    for report, field in (
        ({"weekly": "someday 9"}, "weekly"),
        ({"weekly": "mon 25:00"}, "weekly"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"email": {"host": "smtp", "from": "a@b"}}, "to"),
    ):
        with pytest.raises(ConfigError) as err:
            build_config({**base, "report": report})
        assert field in err.value.render()
    bad_metric = config_dict("sqlite://", "sqlite://", business_metrics=[{"name": "x"}])
    with pytest.raises(ConfigError) as err:
        build_config(bad_metric)
    assert "exactly one of 'query' or 'column'" in err.value.render()


def test_weekly_trigger_fires_on_monday_morning_local_time() -> None:
    trigger = weekly_trigger("mon 09:00", "Europe/Berlin")
    after = datetime(2026, 11, 10, 12, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, after)
    assert fire == datetime(2026, 11, 16, 8, tzinfo=UTC)  # 09:00 CET
    summer = trigger.get_next_fire_time(None, datetime(2026, 7, 1, tzinfo=UTC))
    assert summer == datetime(2026, 7, 6, 7, tzinfo=UTC)  # 09:00 CEST


def test_schedule_weekly_adds_one_job_that_reports_last_week(rt: Runtime, tmp_path: Path) -> None:
    scheduler = BackgroundScheduler(timezone=UTC)
    clock = SimulatedClock(W45.end + timedelta(hours=9))
    schedule_weekly(scheduler, rt, clock)
    jobs = scheduler.get_jobs()
    assert [job.id for job in jobs] == [JOB_ID]
    run_weekly(rt, clock)
    assert (tmp_path / "reports" / "slo-report-2026-W45.html").stat().st_size > 10_000


def test_the_daemon_schedules_the_weekly_report(tmp_path: Path) -> None:
    from monitor.service.daemon import Daemon

    data = config_dict(f"sqlite:///{tmp_path / 'vigil.db'}", f"sqlite:///{tmp_path / 's.db'}")
    data["server"] = {"port": 0}
    data["report"] = {"weekly": "fri 17:30", "timezone": "America/New_York"}
    rt = open_runtime(build_config(data), tmp_path)
    daemon = Daemon(rt, SimulatedClock(W45.end))
    daemon.start()
    try:
        job = daemon.scheduler.get_job(JOB_ID)
        assert job is not None
        assert job.trigger.get_next_fire_time(None, W45.end) == datetime(
            2026, 11, 13, 22, 30, tzinfo=UTC
        )
    finally:
        daemon.stop()
        rt.close()


def test_pdf_is_written_with_weasyprint(tmp_path: Path) -> None:
    target = tmp_path / "r.pdf"
    written = write_pdf("<html><body>hi</body></html>", target)
    assert pdf_available()  # `make test` installs the pdf extra
    assert written == target and target.read_bytes().startswith(b"%PDF")


def test_cli_renders_a_past_week(rt: Runtime, tmp_path: Path) -> None:
    cfg_path = write_config(
        tmp_path / "vigil.yaml",
        {
            **config_dict(rt.config.store.get_secret_value(), f"sqlite:///{tmp_path / 's.db'}"),
            "report": {"out_dir": "out"},
        },
    )
    vigil = str(Path(sys.executable).parent / "vigil")
    args = [vigil, "report", "weekly", "-c", str(cfg_path), "--week", "2026-W45"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "2026-W45: " in result.stdout
    assert (tmp_path / "out" / "slo-report-2026-W45.html").exists()
    bad = subprocess.run([*args[:-1], "W45"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "not an ISO week" in bad.stderr
