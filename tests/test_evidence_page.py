"""An incident's evidence page at `/incidents/<id>`, through a real daemon and its HTTP server
on a real store: the incident's value against its threshold, the rule that decided, the
timeline and the full root-cause table (slice names escaped), behind the same basic auth as
the status page; an unknown or non-numeric id is a 404, never a 500. With `server.public_url`
set, the stored alert links the page and Slack, PagerDuty and the webhook carry the link
through the strict fakes; without it, no channel links anything. The page renders in headless
Chromium at a phone's width without a horizontal scroll of the page."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from alerts.notifiers.pagerduty import PagerDutyNotifier
from alerts.notifiers.slack import SlackNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.payloads import alert_from_json
from monitor.core.clock import SimulatedClock
from monitor.engine.runtime import Runtime
from monitor.engine.tick import tick
from monitor.service.daemon import Daemon
from monitor.service.webconfig import load_web_config
from monitor.store.tables import Incident, IncidentEvent, ModelHealth, SLOEvaluation
from tests.builders import T0, build_alert, build_notification
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.test_metrics import breaching_runtime
from tests.test_report_demo import chromium
from tests.test_status_page import DOCS, fetch, web_config
from tests.test_webhook import SECRET, Receiver

PUBLIC = "https://vigil.example.internal"
HOSTILE = "<script>alert(1)</script>"
TABLE = [
    {
        "dimension": "country",
        "slice": "NL",
        "metric": "accuracy",
        "traffic_before": 0.20,
        "traffic_now": 0.45,
        "metric_before": 0.91,
        "metric_now": 0.40,
        "mix": -0.0612,
        "performance": -0.1734,
        "share_of_change": 0.71,
    },
    {
        "dimension": "merchant",
        "slice": HOSTILE,
        "metric": "accuracy",
        "traffic_before": 0.11,
        "traffic_now": 0.12,
        "metric_before": 0.93,
        "metric_now": 0.88,
        "mix": -0.0011,
        "performance": -0.0052,
        "share_of_change": 0.09,
    },
]
LINES = ["country = NL: 20% → 45% of traffic, accuracy 0.91 → 0.40, explains 71% of the drop"]


@pytest.fixture
def breached(tmp_path: Path) -> Iterator[Runtime]:
    """The breaching model ticked three times with a public URL: its incidents are open."""
    rt = breaching_runtime(
        f"sqlite:///{tmp_path / 'store.db'}",
        f"sqlite:///{tmp_path / 'source.db'}",
        tmp_path,
        public_url=PUBLIC + "/",
    )
    for minutes in (41, 50, 60):
        tick(rt, "m", T0 + timedelta(minutes=minutes))
    yield rt
    rt.close()


def quality_incident(rt: Runtime) -> int:
    """The whole-model accuracy incident, given its root-cause table and lines."""
    with rt.sessions.begin() as session:
        incident = session.scalars(
            select(Incident).where(Incident.kind == "quality_drop", Incident.feature == "")
        ).first()
        assert incident is not None
        incident.alert = {**incident.alert, "root_cause": LINES, "root_cause_table": TABLE}
        return incident.id


def test_the_alert_links_its_evidence_page_when_a_public_url_is_set(breached: Runtime) -> None:
    with breached.sessions() as session:
        incidents = list(session.scalars(select(Incident)))
    assert incidents
    for incident in incidents:  # the trailing slash of the setting is not doubled
        assert incident.alert["evidence_url"] == f"{PUBLIC}/incidents/{incident.id}"


def test_no_public_url_no_link(tmp_path: Path) -> None:
    rt = breaching_runtime(
        f"sqlite:///{tmp_path / 'store.db'}", f"sqlite:///{tmp_path / 'source.db'}", tmp_path
    )
    try:
        tick(rt, "m", T0 + timedelta(minutes=41))
        with rt.sessions() as session:
            alerts = [i.alert for i in session.scalars(select(Incident))]
    finally:
        rt.close()
    assert alerts and all(a.get("evidence_url") is None for a in alerts)
    with FakeSlack(token="xoxb-t") as slack:
        SlackNotifier("#ml-oncall", "xoxb-t", base_url=slack.base_url, timeout=5).send(
            build_notification(alert_from_json(alerts[0]))
        )
        [head] = slack.messages
    assert "Evidence" not in json.dumps(head["blocks"])


def test_the_evidence_page_behind_auth(breached: Runtime, tmp_path: Path) -> None:
    now = T0 + timedelta(minutes=61)
    daemon = Daemon(breached, SimulatedClock(now), web=load_web_config(web_config(tmp_path)))
    daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.server.server_address[1]}"
        deadline = time.monotonic() + 60  # the daemon ticks once at start: read after it
        while time.monotonic() < deadline:
            with breached.sessions() as session:
                ticked = session.get(ModelHealth, "m")
                if ticked is not None and ticked.last_tick_at == now:
                    break
            time.sleep(0.1)
        incident_id = quality_incident(breached)
        assert fetch(f"{base}/incidents/{incident_id}", auth=False)[0] == 401
        assert fetch(f"{base}/incidents/abc", auth=False)[0] == 401  # auth before routing
        status, page = fetch(f"{base}/incidents/{incident_id}")
        missing = [
            fetch(f"{base}/incidents/{path}")
            for path in ("999999", "abc", "-1", "1.5", "%31", "99999999999999999999", "")
        ]
        _, status_page = fetch(f"{base}/")
    finally:
        daemon.stop()
    assert status == 200, page
    assert [code for code, _ in missing] == [404] * len(missing)
    assert f'<a href="/incidents/{incident_id}">' in status_page

    with breached.sessions() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        events = list(
            session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id))
        )
        opening = session.scalars(
            select(SLOEvaluation)
            .where(
                SLOEvaluation.slo_id == incident.slo_id,
                SLOEvaluation.feature == "",
                SLOEvaluation.at <= incident.opened_at,
            )
            .order_by(SLOEvaluation.at.desc())
        ).first()
        alert = dict(incident.alert)
    assert opening is not None and opening.rule
    assert "<script" not in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert f"Incident {incident_id}: m · accuracy" in page
    assert f"<code>{incident.slo_id.replace('>', '&gt;')}</code>" in page
    assert f'<dd class="st">{alert["value"]:.4g}' in page
    assert f"n={alert['n']}" in page
    assert f"<dt>Decided by</dt><dd>{opening.rule}:" in page
    assert alert["runbook_url"] in page
    for event in events:  # the timeline: every event, with its reason
        assert f"<td>{event.kind}</td>" in page
        assert event.reason.replace(">", "&gt;").replace("<", "&lt;") in page
    assert f"<li>{LINES[0]}</li>" in page
    # The full table: every slice, its shares and metric before/now, share of the change,
    # mix and performance; the hostile slice name is text, not markup.
    rows = re.findall(r"<tr><td class=\"slice\">(.*?)</tr>", page, re.S)
    assert len(rows) == len(TABLE)
    cells = [re.findall(r'data-label="[^"]*">([^<]*)</td>', row) for row in rows]
    assert rows[0].startswith("country = NL</td>")
    assert cells[0] == ["20%", "45%", "0.910", "0.400", "71%", "-0.0612", "-0.1734"]
    assert rows[1].startswith("merchant = &lt;script&gt;alert(1)&lt;/script&gt;</td>")
    assert cells[1] == ["11%", "12%", "0.930", "0.880", "9%", "-0.0011", "-0.0052"]
    assert '<th class="num">accuracy ref.</th>' in page
    render_in_chromium(page, tmp_path)


PROBE = """<script>
window.addEventListener("load", () => {
  const d = document.documentElement;
  document.body.dataset.overflow = d.scrollWidth - d.clientWidth;
  document.body.dataset.rows = document.querySelectorAll("table.attribution td.slice").length;
});
</script>"""


def render_in_chromium(page: str, tmp_path: Path) -> None:
    """At a phone's width (390 px) the page does not scroll sideways (the wide table scrolls
    inside its card) and the table's rows are there; the screenshot goes to docs/ when
    VIGIL_UPDATE_DOCS=1."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = chromium(
        tmp_path, "--virtual-time-budget=10000", "--window-size=390,1600", "--dump-dom",
        probe.as_uri(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'data-overflow="0" data-rows="{len(TABLE)}"' in result.stdout
    plain = tmp_path / "evidence.html"
    plain.write_text(page, encoding="utf-8")
    shot = tmp_path / "evidence.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=390,1400", plain.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    if os.environ.get("VIGIL_UPDATE_DOCS") == "1":
        shutil.copy(shot, DOCS / "incident-evidence.png")


LINKED = build_alert(evidence_url=f"{PUBLIC}/incidents/7")


def test_slack_links_the_evidence_page_as_text_and_button() -> None:
    with FakeSlack(token="xoxb-t") as slack:  # the fake validates blocks as Slack does
        SlackNotifier("#ml-oncall", "xoxb-t", base_url=slack.base_url, timeout=5).send(
            build_notification(LINKED)
        )
        [head] = slack.messages
    shown = json.dumps(head["blocks"])
    assert f"<{PUBLIC}/incidents/7|Evidence>" in shown
    buttons = [
        e for b in head["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]  # fmt: skip
    assert {"vigil_evidence": f"{PUBLIC}/incidents/7"}.items() <= {
        b["action_id"]: b.get("url") for b in buttons
    }.items()


def test_pagerduty_links_and_details_carry_the_evidence_page() -> None:
    with FakePagerDuty() as pd:  # the fake refuses links without an href
        PagerDutyNotifier("k" * 32, base_url=pd.base_url, timeout=5).send(
            build_notification(LINKED)
        )
        [event] = pd.accepted()
    assert {"href": f"{PUBLIC}/incidents/7", "text": f"Evidence: {LINKED.title}"} in event["links"]
    [alert] = event["payload"]["custom_details"]["alerts"]
    assert alert["evidence"] == f"{PUBLIC}/incidents/7"


def test_the_webhook_body_carries_the_evidence_url() -> None:
    with Receiver() as receiver:
        WebhookNotifier(receiver.url, SECRET).send(build_notification(LINKED))
        [(_, raw)] = receiver.received
    [alert] = json.loads(raw)["alerts"]
    assert alert["evidence_url"] == f"{PUBLIC}/incidents/7"


def test_a_public_url_that_is_not_an_address_is_refused_by_name() -> None:
    from monitor.config.problems import ConfigError
    from tests.builders import build_config, config_dict

    data = config_dict("sqlite://", "sqlite://")
    data["server"] = {"public_url": "vigil.local"}
    with pytest.raises(ConfigError) as caught:
        build_config(data)
    [problem] = caught.value.problems
    assert problem.path == ("server", "public_url") and problem.line > 0
    assert "'vigil.local' is not an http(s) address" in problem.message


def test_a_refired_incident_keeps_linking_its_page(db_url: str, tmp_path: Path) -> None:
    """Re-fired within its cool-down, the incident is the same one, so is its page: the
    re-fire's message links `/incidents/<the same id>`."""
    from tests.test_engine import ACC, BAD, GOOD, Engine

    e = Engine(db_url, tmp_path, [{**ACC, "resolve_after": 1, "keep_firing_for": "24h"}])
    server = e.config.server.model_copy(update={"public_url": PUBLIC})
    e.config = e.config.model_copy(update={"server": server})
    try:
        e.feed(T0, [(0, BAD)])
        e.feed(T0 + timedelta(hours=1), [(0, GOOD)])
        assert [c.event for c in e.feed(T0 + timedelta(hours=5), [(0, BAD)]).changes] == ["refire"]
        (incident,) = e.incidents()
        messages = e.messages()
    finally:
        e.rt.close()
    link = f"{PUBLIC}/incidents/{incident.id}"
    assert incident.alert["evidence_url"] == link
    assert len(messages) == 3
    assert all(m.payload["alerts"][0]["evidence_url"] == link for m in messages)
