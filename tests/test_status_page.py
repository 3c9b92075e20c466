"""The daemon's status page at `/` and `/readyz` reflecting failing models, through a real
daemon and its HTTP server: the page shows what the store holds (each SLO's current value
against its objective with a sparkline of its evaluations, the open incident with its
root-cause lines, the silence, the receiver's last delivery, each model's last tick), sits
behind the same basic auth as `/metrics`, and renders in headless Chromium without a
horizontal scroll bar at a phone's width."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import bcrypt
import pytest
from sqlalchemy import select

from monitor.core.clock import SimulatedClock
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import tick
from monitor.service.daemon import Daemon
from monitor.service.status import fmt_value
from monitor.service.webconfig import load_web_config
from monitor.store.tables import (
    Incident,
    ModelHealth,
    OutboxMessage,
    Silence,
    SLOEvaluation,
    SLOState,
)
from tests.builders import T0, build_config, config_dict, create_source
from tests.test_daemon import get, wait_for
from tests.test_metrics import breaching_runtime
from tests.test_report_demo import chromium

PASSWORD = "s3cret-for-the-page"
DOCS = Path(__file__).resolve().parent.parent / "docs"
ROOT_CAUSE = [
    "country = NL: 20% → 45% of traffic, accuracy 0.91 → 0.40, explains 71% of the drop",
    "amount 120–500: 11% → 12% of traffic, accuracy 0.93 → 0.88, explains 9% of the drop",
]


def fetch(url: str, auth: bool = True) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"oncall:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def web_config(folder: Path) -> Path:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = folder / "web.yml"
    path.write_text(f"basic_auth_users:\n  oncall: '{hashed}'\n", encoding="utf-8")
    return path


@pytest.fixture
def breached(tmp_path: Path) -> Iterator[Runtime]:
    """The breaching model ticked three times; the incident's alert gains root-cause lines
    (as the attribution feature writes them) and a silence is active."""
    rt = breaching_runtime(
        f"sqlite:///{tmp_path / 'store.db'}", f"sqlite:///{tmp_path / 'source.db'}", tmp_path
    )
    for minutes in (41, 50, 60):
        tick(rt, "m", T0 + timedelta(minutes=minutes))
    add_root_cause(rt)
    with rt.sessions.begin() as session:
        session.add(
            Silence(
                matchers={"model": "m", "kind": "drift"},
                starts_at=T0,
                ends_at=T0 + timedelta(days=1),
                created_by="ana",
                comment="feature store migration",
                created_at=T0,
                source="cli",
            )
        )
    yield rt
    rt.close()


def add_root_cause(rt: Runtime) -> None:
    """Write root-cause lines on the open incident's alert, as the attribution stage does at
    every tick that keeps the incident open."""
    with rt.sessions.begin() as session:
        incident = session.scalars(select(Incident).where(Incident.kind != "burn")).first()
        assert incident is not None
        incident.alert = {**incident.alert, "root_cause": ROOT_CAUSE}


def test_the_status_page_shows_the_store_behind_auth(breached: Runtime, tmp_path: Path) -> None:
    now = T0 + timedelta(minutes=61)
    daemon = Daemon(breached, SimulatedClock(now), web=load_web_config(web_config(tmp_path)))
    daemon.run_outbox()  # deliver what the ticks queued, so the receiver has a last delivery
    daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.server.server_address[1]}"
        assert fetch(f"{base}/", auth=False)[0] == 401
        assert fetch(f"{base}/metrics", auth=False)[0] == 401
        # The daemon ticks the model once at start: read the page after that tick, so the
        # page and the store are compared at the same moment.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with breached.sessions() as session:
                ticked = session.get(ModelHealth, "m")
                if ticked is not None and ticked.last_tick_at == now:
                    break
            time.sleep(0.1)
        add_root_cause(breached)  # the start tick rewrote the alert without them
        status, page = fetch(f"{base}/")
    finally:
        daemon.stop()
    assert status == 200
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<script" not in page

    with breached.sessions() as session:
        states = list(session.scalars(select(SLOState)))
        evaluations = list(session.scalars(select(SLOEvaluation)))
        incidents = list(session.scalars(select(Incident).where(Incident.status != "resolved")))
        health = session.get(ModelHealth, "m")
        sent = list(session.scalars(select(OutboxMessage).where(OutboxMessage.status == "sent")))
    assert health is not None and health.last_tick_at is not None
    # Every SLO's current value and status, next to its objective.
    for slo in breached.config.models["m"].slos:
        assert slo.objective.text.replace(">", "&gt;").replace("<", "&lt;") in page
    accuracy = next(s for s in states if s.slo_id.startswith("accuracy>=0.9@"))
    assert accuracy.status == "breach"
    assert f'<td class="st">{fmt_value(accuracy.value, False)} <small>n={accuracy.n}' in page
    assert '<td class="st breach">breach</td>' in page
    # A sparkline per SLO with history: one path vertex per stored evaluation.
    paths = re.findall(r'<path d="([^"]+)"', page)
    assert paths
    accuracy_points = [e for e in evaluations if e.slo_id == accuracy.slo_id and e.feature == ""]
    assert max(len(re.findall(r"[ML]", d)) for d in paths) == len(accuracy_points)
    assert len(accuracy_points) == 4  # three ticks of the fixture, one at the daemon's start
    # Open incidents with their root-cause lines, the silence, the receiver, the last tick.
    assert incidents and all(
        f'<td><a href="/incidents/{i.id}">{i.id}</a></td>' in page for i in incidents
    )  # each links its evidence page (tests/test_evidence_page.py)
    for line in ROOT_CAUSE:
        assert f"<li>{line}</li>" in page
    assert "feature store migration" in page and "<code>model=m</code>" in page
    assert sent and "<tr><td>chat</td>" in page
    assert "last tick just now · succeeded" in page
    render_in_chromium(page, tmp_path)


PROBE = """<script>
window.addEventListener("load", () => {
  const d = document.documentElement;
  const cards = [...document.querySelectorAll(".card")];
  document.body.dataset.overflow = Math.max(d.scrollWidth - d.clientWidth,
    ...cards.map(c => c.scrollWidth - c.clientWidth));
  document.body.dataset.sparks = document.querySelectorAll("svg.spark").length;
});
</script>"""


def render_in_chromium(page: str, tmp_path: Path) -> None:
    """At a phone's width (390 px) nothing scrolls sideways, neither the page nor a card's
    table, and every sparkline is an SVG
    element; the screenshot goes to docs/ when VIGIL_UPDATE_DOCS=1."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = chromium(
        tmp_path,
        "--virtual-time-budget=10000",
        "--window-size=390,1600",
        "--dump-dom",
        probe.as_uri(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    sparks = page.count('<svg class="spark"')
    assert sparks >= 1
    assert f'data-overflow="0" data-sparks="{sparks}"' in result.stdout
    plain = tmp_path / "status.html"
    plain.write_text(page, encoding="utf-8")
    shot = tmp_path / "status.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=390,1500", plain.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    if os.environ.get("VIGIL_UPDATE_DOCS") == "1":
        shutil.copy(shot, DOCS / "status-page.png")


def test_readyz_turns_503_while_a_model_keeps_failing(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    source.mkdir()  # a directory: every tick fails to open the source
    data = config_dict(f"sqlite:///{tmp_path / 'store.db'}", f"sqlite:///{source}")
    data["models"]["m"]["schedule"] = "1s"  # failed ticks are retried within a second
    data["server"] = {"port": 0, "unready_after_failures": 2}
    rt = open_runtime(build_config(data), tmp_path)
    daemon = Daemon(rt, SimulatedClock(T0))
    daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.server.server_address[1]}"

        def unready() -> dict[str, object] | None:
            answer = get(f"{base}/readyz")
            return json.loads(answer[2]) if answer and answer[0] == 503 else None

        body = wait_for("/readyz 503 after two failed ticks", unready, 60)
        assert body["failing_models"] == ["m"]
        [problem] = body["problems"]  # type: ignore[misc]
        assert str(problem).startswith("m: ") and "ticks failed in a row (limit 2)" in problem
        assert "OperationalError" in str(problem)
        assert "failed in a row" in fetch(f"{base}/", auth=False)[1]

        source.rmdir()
        create_source(f"sqlite:///{source}").dispose()  # the source comes back

        def ready() -> bool | None:
            answer = get(f"{base}/readyz")
            return True if answer and answer[0] == 200 else None

        wait_for("/readyz 200 once a tick succeeds", ready, 60)
    finally:
        daemon.stop()
        rt.close()
