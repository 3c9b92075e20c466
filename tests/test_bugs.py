"""The bug queue receiver, `vigil bugs`, and the GitHub receiver against a local fake GitHub.

Incidents are opened the way a tick opens them, in a real store (SQLite and PostgreSQL), and
their notifications travel through the outbox to notifiers built by the registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from alerts.dispatch import flush
from alerts.incidents import dedup_key, open_incident, resolve
from alerts.notifiers.base import Alert, DeliveryError, Notification
from alerts.notifiers.bug_queue import BugQueueNotifier
from alerts.notifiers.github import GitHubIssueNotifier, marker
from alerts.notifiers.registry import build_notifiers
from alerts.outbox import drain, notification_of
from monitor.cli.main import app
from monitor.config import VigilConfig
from monitor.core.clock import SimulatedClock
from monitor.store.db import make_engine, session_factory, upgrade
from monitor.store.tables import Bug, Incident, OutboxMessage
from tests.builders import build_alert, build_config, config_dict, write_config
from tests.fakes.http import FakeHTTPServer, Reply, Request

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
GH_TOKEN = "ghp_fAkEtOkEn0123456789abcdefABCDEF"


def make_alert(severity: str = "ticket", metric: str = "drift.psi", **changes: Any) -> Alert:
    drift = {
        "slo": f"{metric}<0.2@24h",
        "metric": metric,
        "kind": "feature_drift" if metric.startswith("drift") else "quality_drop",
        "severity": severity,
        "objective": "< 0.2",
        "value": 0.31,
        "n": 5000,
        "runbook_url": "https://wiki.example/runbooks/feature-drift.md",
        "started_at": T0,
        "feature": "amount",
        "ci": None,
        "details": {"amount": 0.31, "country": 0.12},
    }
    return build_alert(**{**drift, **changes})


def config_data(receivers: dict[str, Any], store: str = "sqlite://") -> dict[str, Any]:
    data = config_dict(store, "sqlite://")
    data["routing"] = {"default": list(receivers), "group_wait": "0s", "group_interval": "0s"}
    data["receivers"] = receivers
    return data


def config_for(receivers: dict[str, Any], store: str = "sqlite://") -> VigilConfig:
    return build_config(config_data(receivers, store))


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def open_and_flush(
    sessions: sessionmaker[Session], config: VigilConfig, alert: Alert, now: datetime
) -> int:
    with sessions.begin() as session:
        key = dedup_key(alert.model, alert.slo, alert.feature or "")
        incident = open_incident(session, config, key, alert, now, "test")
        flush(session, now)
        return incident.id


def resolve_and_flush(sessions: sessionmaker[Session], incident_id: int, now: datetime) -> None:
    with sessions.begin() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        resolve(session, incident, now, "test", value=0.05)
        flush(session, now)


def bugs(sessions: sessionmaker[Session]) -> list[Bug]:
    with sessions() as session:
        return list(session.scalars(select(Bug).order_by(Bug.id)))


# -- the receiver, through the outbox ----------------------------------------------------------


def test_tickets_and_resolved_pages_become_bugs_once(sessions: sessionmaker[Session]) -> None:
    """A ticket incident files one bug linked to its incident; a page files nothing while it
    fires and a follow-up once it resolved; re-sending every message files nothing new."""
    config = config_for({"bugs": {"bug_queue": {}}})
    clock = SimulatedClock(T0)
    notifiers = build_notifiers(config, Path("."), sessions=sessions, clock=clock)
    ticket = open_and_flush(sessions, config, make_alert(), T0)
    page = open_and_flush(sessions, config, make_alert("page", "accuracy", feature=None), T0)
    drain(sessions, notifiers, T0, timedelta(days=2))

    [filed] = bugs(sessions)
    assert (filed.incident_id, filed.severity, filed.status, filed.assignee) == (
        ticket,
        "ticket",
        "open",
        None,
    )
    assert filed.title == "fraud-detector: drift.psi / amount < 0.2 (24h)"
    assert filed.evidence["value"] == 0.31 and filed.evidence["n"] == 5000
    assert filed.evidence["details"] == {"amount": 0.31, "country": 0.12}
    assert filed.runbook_url.endswith("feature-drift.md") and filed.created_at == T0
    with sessions() as session:
        refs = [m.ref for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert refs == [f"bugs:{filed.id}", None]  # the firing page filed nothing

    later = T0 + timedelta(hours=3)
    clock.set(later)
    resolve_and_flush(sessions, page, later)
    resolve_and_flush(sessions, ticket, later)
    drain(sessions, notifiers, later, timedelta(days=2))

    ticket_bug, follow_up = bugs(sessions)
    assert follow_up.incident_id == page and follow_up.severity == "page"
    assert follow_up.title.startswith("Follow-up of a resolved page: fraud-detector: accuracy")
    assert follow_up.evidence["resolved_at"] == later.isoformat()
    assert ticket_bug.status == "open"  # people close bugs, not the incident's end
    assert ticket_bug.evidence["resolved_at"] == later.isoformat()

    queue = BugQueueNotifier(lambda: sessions, clock)
    with sessions() as session:
        messages = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    for message in messages:
        queue.send(notification_of(message, None))
    assert len(bugs(sessions)) == 2


def test_a_bug_links_its_incident_evidence_page(sessions: sessionmaker[Session]) -> None:
    """With `server.public_url`, the bug keeps the incident's evidence page among its evidence
    (`vigil bugs show` prints it); without it, no link."""
    data = config_data({"bugs": {"bug_queue": {}}})
    data["server"] = {"public_url": "https://vigil.example:9464"}
    config = build_config(data)
    notifiers = build_notifiers(config, Path("."), sessions=sessions, clock=SimulatedClock(T0))
    ticket = open_and_flush(sessions, config, make_alert(), T0)
    drain(sessions, notifiers, T0, timedelta(days=2))
    [filed] = bugs(sessions)
    assert filed.evidence["evidence_url"] == f"https://vigil.example:9464/incidents/{ticket}"

    plain = config_for({"bugs": {"bug_queue": {}}})
    notifiers = build_notifiers(plain, Path("."), sessions=sessions, clock=SimulatedClock(T0))
    open_and_flush(sessions, plain, make_alert(feature="country"), T0)
    drain(sessions, notifiers, T0, timedelta(days=2))
    assert bugs(sessions)[-1].evidence["evidence_url"] is None


def test_info_and_firing_pages_file_nothing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    queue = BugQueueNotifier(lambda: sessions, SimulatedClock(T0))
    for alert in (make_alert("info"), make_alert("page"), make_alert(status="resolved")):
        note = Notification("k", "bugs", "g", "open", (alert,))
        assert queue.send(note).ref is None
    assert bugs(sessions) == []
    engine.dispose()


def test_store_outage_is_retryable(tmp_path: Path) -> None:
    """A store that cannot be reached delays the bug; the error names no URL."""
    engine = make_engine("postgresql+psycopg://vigil:pw-SECRET@127.0.0.1:1/none")
    queue = BugQueueNotifier(lambda: session_factory(engine), SimulatedClock(T0))
    with pytest.raises(DeliveryError) as caught:
        queue.send(Notification("k", "bugs", "g", "open", (make_alert(),)))
    assert caught.value.retryable is True and "SECRET" not in str(caught.value)
    engine.dispose()


# -- vigil bugs --------------------------------------------------------------------------------

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_cli_lists_shows_assigns_and_closes(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    data = config_data({"bugs": {"bug_queue": {}}}, store=store)
    config = build_config(data)
    path = write_config(tmp_path / "vigil.yaml", data)
    engine = make_engine(store)
    upgrade(engine)
    sessions = session_factory(engine)
    incident = open_and_flush(sessions, config, make_alert(), T0)
    drain(
        sessions,
        build_notifiers(config, tmp_path, sessions=sessions, clock=SimulatedClock(T0)),
        T0,
        timedelta(days=2),
    )
    engine.dispose()
    c = ("-c", str(path))

    code, out = run("bugs", "list", *c)
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split() == ["ID", "STATUS", "SEVERITY", "MODEL", "TITLE", "ASSIGNEE", "CREATED"]
    assert row.startswith("1 ") and "open" in row and "drift.psi / amount" in row
    code, out = run("bugs", "list", *c, "--json")
    [listed] = json.loads(out)
    assert listed["incident_id"] == incident and listed["evidence"]["value"] == 0.31
    code, out = run("bugs", "show", *c, "1")
    assert code == 0 and "runbook_url" in out and "feature-drift.md" in out and "0.31" in out
    code, out = run("bugs", "assign", *c, "1", "alice")
    assert code == 0 and "assigned to alice (triaged)" in out
    code, out = run("bugs", "close", *c, "1", "--reason", "reference refreshed")
    assert code == 0 and "closed" in out
    code, out = run("bugs", "list", *c)
    assert out.strip() == "(none)"
    code, out = run("bugs", "show", *c, "1", "--json")
    shown = json.loads(out)
    assert (shown["status"], shown["assignee"]) == ("closed", "alice")
    assert shown["evidence"]["close_reason"] == "reference refreshed"
    code, out = run("bugs", "close", *c, "1")
    assert code == 2 and "already closed" in out
    code, out = run("bugs", "show", *c, "99")
    assert code == 2 and "no bug #99" in out
    code, out = run("bugs", "list", *c, "--status", "nope")
    assert code == 2 and "--status" in out


# -- GitHub ------------------------------------------------------------------------------------


@dataclass
class FakeGitHub:
    """The issues endpoints of GitHub's REST API for one repository, strict about auth."""

    repo: str = "acme/models"
    issues: list[dict[str, Any]] = field(default_factory=list)
    rate_limited: int = 0
    base_url: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        self.requests.append((method, path))
        if headers.get("Authorization") != f"Bearer {GH_TOKEN}":
            return 401, {}, {"message": "Bad credentials", "documentation_url": "https://x"}
        if self.rate_limited:
            self.rate_limited -= 1
            reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9999999999"}
            return 403, reset, {"message": "API rate limit exceeded"}
        parts = urlsplit(path)
        if parts.path != f"/repos/{self.repo}/issues":
            return 404, {}, {"message": "Not Found"}
        if method == "GET":
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            wanted = set(filter(None, query.get("labels", "").split(",")))
            found = [
                i for i in reversed(self.issues) if wanted <= {lb["name"] for lb in i["labels"]}
            ]
            return 200, {}, found[: int(query.get("per_page", 30))]
        body = json.loads(raw)
        if not isinstance(body.get("title"), str) or not body["title"]:
            errors = [{"resource": "Issue", "code": "missing_field", "field": "title"}]
            return 422, {}, {"message": "Validation Failed", "errors": errors}
        number = len(self.issues) + 1
        issue = {
            "number": number,
            "title": body["title"],
            "body": body.get("body"),
            "labels": [{"name": n} for n in body.get("labels", [])],
            "state": "open",
            "html_url": f"https://github.example/{self.repo}/issues/{number}",
        }
        self.issues.append(issue)
        return 201, {}, issue


class GitHubServer(FakeHTTPServer):
    """Serves a `FakeGitHub` over HTTP."""

    name = "fake-github"

    def __init__(self, fake: FakeGitHub) -> None:
        super().__init__()
        self.fake = fake

    def answer(self, request: Request) -> Reply:
        status, extra, answer = self.fake.handle(
            request.method, request.path, request.headers, request.raw
        )
        return Reply(status, answer, extra)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    with GitHubServer(fake) as server:
        fake.base_url = server.origin
        yield fake


def gh_notifier(
    github: FakeGitHub, sessions: sessionmaker[Session], token: str = GH_TOKEN
) -> GitHubIssueNotifier:
    queue = BugQueueNotifier(lambda: sessions, SimulatedClock(T0))
    return GitHubIssueNotifier(
        queue, lambda: sessions, github.repo, token, github.base_url, labels=["vigil"]
    )


def test_github_files_each_bug_once_even_after_a_crash(github: FakeGitHub, tmp_path: Path) -> None:
    """The bug becomes one labelled issue whose URL is kept on the bug; re-sending files
    nothing; and when the URL was never recorded (a crash after the API call), the issue is
    found by its marker instead of being filed again."""
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    notifier = gh_notifier(github, sessions)
    note = Notification("k1", "gh", "g1", "open", (make_alert(incident_key="inc-7"),))

    delivery = notifier.send(note)

    [issue] = github.issues
    assert delivery.ref == issue["html_url"]
    assert issue["title"] == "fraud-detector: drift.psi / amount < 0.2 (24h)"
    assert [lb["name"] for lb in issue["labels"]] == ["vigil"]
    assert "0.310 against objective `< 0.2`" in issue["body"]
    [bug] = bugs(sessions)
    assert marker(bug.dedup_key) in issue["body"] and bug.external_url == issue["html_url"]

    notifier.send(note)
    with sessions.begin() as session:
        session.get(Bug, bug.id).external_url = None  # type: ignore[union-attr]
    assert notifier.send(note).ref == issue["html_url"]
    assert len(github.issues) == 1 and bugs(sessions)[0].external_url == issue["html_url"]
    engine.dispose()


def test_github_errors_are_classified_without_the_token(github: FakeGitHub, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    note = Notification("k1", "gh", "g1", "open", (make_alert(),))
    with pytest.raises(DeliveryError) as bad_token:
        gh_notifier(github, sessions, token="ghp_wrong-SECRET").send(note)
    github.rate_limited = 1
    with pytest.raises(DeliveryError) as limited:
        gh_notifier(github, sessions).send(note)

    assert bad_token.value.retryable is False and "Bad credentials" in str(bad_token.value)
    assert "SECRET" not in str(bad_token.value)
    assert limited.value.retryable is True and limited.value.retry_after is not None
    assert gh_notifier(github, sessions).send(note).ref == github.issues[0]["html_url"]
    engine.dispose()
