"""The fault suite's world: real `vigil run` processes, live sources, fake Slack and PagerDuty.

A `World` owns a store (SQLite file or a PostgreSQL URL), one SQLite source per model that
the test feeds while Vigil runs, the fake Slack and PagerDuty servers (in this process, on
threads, answering 500/429 or hanging on demand), and the daemons it starts and kills.

`audit()` compares what the fakes received with what the store says was sent:

- lost: an outbox message not marked sent at the end, or marked sent but absent from its
  receiver (Slack: no message carries its key in metadata; PagerDuty: fewer accepted events
  for the group than messages sent, or the incident not in the state of the last message);
- doubled: a Slack message key posted more than once, a Slack message no outbox row knows,
  more than one PagerDuty incident for one group opening, more than one Vigil incident for
  one SLO opening, or an SLI counting more (or fewer) rows than the source holds.

Every scenario appends one line of figures to `FIGURES`; conftest.py prints them at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from monitor.store.tables import Incident, OutboxMessage, SLOState
from tests.builders import add_labels, add_predictions, config_dict, create_source, hourly
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.test_daemon import SLO, VIGIL, env, free_port

FIGURES: list[str] = []
SLACK_TOKEN = "xoxb-faults-0000000000-secret"
PD_KEY = "F0123456789ABCDEF0123456789ABCDE"
START_WAIT = 180.0
"""Seconds a daemon may take to answer /healthz: imports are slow on a loaded machine."""
SETTLE_WAIT = 240.0
WRONG, RIGHT = 40, 2000
"""Rows per breach (every decision wrong) and per recovery (enough right ones for the
Wilson interval of the window to clear the objective)."""


class Daemon:
    """One `vigil run` process; killed at teardown whatever happened."""

    def __init__(self, world: World, index: int) -> None:
        self.index = index
        self.port = free_port()
        data = world.config()
        data["server"] = {**data["server"], "port": self.port}
        path = world.tmp / f"vigil-{index}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        self.config_path = path
        self.log = world.tmp / f"daemon-{index}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [VIGIL, "run", "--config", str(path), "--log-format", "json"],
                cwd=world.tmp,
                env=env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_WAIT
        while not self.healthy():
            if not self.alive:
                raise AssertionError(f"daemon {self.index} exited:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"daemon {self.index} never became healthy")
            time.sleep(0.1)

    def kill(self) -> None:
        """kill -9: no handler runs, no lease is released but by the OS or the server."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def reload(self) -> None:
        """SIGHUP: the hook for the config-reload scenarios (issue 12, point 7)."""
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self) -> int:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def logged(self, event: str) -> int:
        count = 0
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                count += json.loads(line).get("event") == event
            except json.JSONDecodeError:
                continue
        return count


@dataclass
class Audit:
    messages: int = 0
    slack_posts: int = 0
    pd_events: int = 0
    resent: int = 0
    """Deliveries repeated after a kill and absorbed by idempotency (PagerDuty dedup_key)."""
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)

    def line(self, scenario: str, extra: str, seconds: float) -> str:
        return (
            f"{scenario}: {extra}; {self.messages} messages (Slack {self.slack_posts} posts, "
            f"PagerDuty {self.pd_events} events, {self.resent} re-sent and deduplicated); "
            f"lost {len(self.lost)}, doubled {len(self.doubled)}; {seconds:.0f}s"
        )


class World:
    """Store, sources, fakes and daemons for one scenario."""

    def __init__(
        self,
        tmp: Path,
        store_url: str,
        models: int = 3,
        sources: dict[str, str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.store_url = store_url
        self.models = [f"m{i}" for i in range(models)]
        self.sources = sources or {}
        """Source URLs by model; the others read a SQLite file of their own."""
        self.slack = FakeSlack(token=SLACK_TOKEN)
        self.pd = FakePagerDuty()
        self.daemons: list[Daemon] = []
        self.rows: dict[str, int] = dict.fromkeys(self.models, 0)
        self.labelled: dict[str, int] = dict.fromkeys(self.models, 0)
        self._next_id = dict.fromkeys(self.models, 1)
        self.overrides: dict[str, Any] = {}
        self.model_overrides: dict[str, Any] = {}
        self.started = time.monotonic()
        for name in self.models:
            create_source(_driver(self.source_url(name))).dispose()

    def __enter__(self) -> World:
        self.slack.__enter__()
        self.pd.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for daemon in self.daemons:
            if daemon.alive:
                daemon.kill()
        self.slack.after_answer = self.pd.after_answer = None
        for fake in (self.slack, self.pd):
            if fake.gate is not None:
                fake.gate.set()
        self.slack.__exit__(None, None, None)
        self.pd.__exit__(None, None, None)

    # -- config and daemons ------------------------------------------------------------------

    def source_url(self, name: str) -> str:
        return self.sources.get(name) or f"sqlite:///{self.tmp / f'source-{name}.db'}"

    def config(self) -> dict[str, Any]:
        data = config_dict(self.store_url, self.source_url(self.models[0]), schedule="1s")
        template = data["models"].pop("m")
        data["sources"] = {}
        for name in self.models:
            data["sources"][f"src-{name}"] = {"url": self.source_url(name), "chunk_size": 100}
            data["models"][name] = {**template, "source": f"src-{name}", **self.model_overrides}
        data["routing"] = {
            "default": ["chat", "pd"],
            "group_by": ["model"],
            "group_wait": "0s",
            "group_interval": "0s",
            "repeat_interval": "4s",
        }
        data["receivers"] = {
            "chat": {
                "slack": {
                    "channel": "#ml-oncall",
                    "token": SLACK_TOKEN,
                    "base_url": self.slack.base_url,
                }
            },
            "pd": {"pagerduty": {"routing_key": PD_KEY, "base_url": self.pd.base_url}},
        }
        data["server"] = {
            "host": "127.0.0.1",
            # Every message waits for the next drain: half a second instead of one cuts idle
            # time from every send and settle; retries keep their 1 s backoff.
            "outbox_interval": "0.5s",
            "outbox_backoff": "1s",
            "shutdown_timeout": "10s",
        }
        data.update(self.overrides)
        return data

    def start(self) -> Daemon:
        daemon = Daemon(self, len(self.daemons))
        self.daemons.append(daemon)
        return daemon

    # -- the source, fed while Vigil runs ----------------------------------------------------

    def feed(self, name: str, *, correct: bool) -> None:
        """A batch of labelled predictions a few minutes old: all wrong (a breach) or many
        right (a recovery)."""
        count = RIGHT if correct else WRONG
        now = datetime.now(UTC)
        start = now - timedelta(minutes=3)
        engine = sa.create_engine(_driver(self.source_url(name)), poolclass=sa.pool.NullPool)
        try:
            times = hourly(start, count, step=timedelta(seconds=60 / max(count, 1)))
            ids = add_predictions(engine, self._next_id[name], times, score=0.9)
            add_labels(engine, [(i, now - timedelta(seconds=30), 1 if correct else 0) for i in ids])
        finally:
            engine.dispose()
        self._next_id[name] += count
        self.rows[name] += count
        self.labelled[name] += count

    # -- waiting and auditing ----------------------------------------------------------------

    def store(self) -> sa.Engine:
        return sa.create_engine(_driver(self.store_url), poolclass=sa.pool.NullPool)

    def state(self) -> dict[str, Any] | None:
        """Incidents by status and outbox rows by status, or None while the store is away."""
        engine = self.store()
        try:
            with engine.connect() as conn:
                incidents = Counter(conn.execute(sa.select(Incident.status)).scalars())
                outbox = Counter(conn.execute(sa.select(OutboxMessage.status)).scalars())
                counted = {
                    model: n
                    for model, n in conn.execute(
                        sa.select(SLOState.model, SLOState.n).where(SLOState.slo_id == SLO)
                    )
                }
        except sa.exc.SQLAlchemyError:
            return None
        finally:
            engine.dispose()
        return {"incidents": incidents, "outbox": outbox, "counted": counted}

    def wait(self, what: str, check: Callable[[dict[str, Any]], bool], limit: float) -> None:
        deadline = time.monotonic() + limit
        last: dict[str, Any] | None = None
        while True:
            state = self.state()
            if state is not None:
                last = state
                if check(state):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last state {last}")
            time.sleep(0.25)

    def settle(self, firing: int = 0) -> None:
        """Wait until every model's rows are counted, `firing` incidents still fire, and
        nothing is left in the outbox."""

        def done(state: dict[str, Any]) -> bool:
            opened = sum(state["incidents"].values())
            resolved = state["incidents"].get("resolved", 0)
            return (
                state["counted"] == {m: n for m, n in self.labelled.items() if n}
                and opened - resolved == firing
                and state["outbox"].get("pending", 0) == 0
            )

        self.wait("the store to settle", done, SETTLE_WAIT)

    def audit(self) -> Audit:
        audit = Audit()
        engine = self.store()
        with engine.connect() as conn:
            rows = list(conn.execute(sa.select(OutboxMessage).order_by(OutboxMessage.id)))
            incidents = list(conn.execute(sa.select(Incident.dedup_key, Incident.opened_at)))
            counted = {
                model: n
                for model, n in conn.execute(
                    sa.select(SLOState.model, SLOState.n).where(SLOState.slo_id == SLO)
                )
            }
        engine.dispose()
        audit.messages = len(rows)
        for row in rows:
            if row.status != "sent":
                audit.lost.append(f"outbox {row.key} is {row.status}: {row.last_error}")
        self._audit_slack([r for r in rows if r.receiver == "chat"], audit)
        self._audit_pd([r for r in rows if r.receiver == "pd"], audit)
        for key, n in Counter(k for k, _ in incidents).items():
            opens = {o for k, o in incidents if k == key}
            if n != len(opens):
                audit.doubled.append(f"incident {key} opened {n} times at {len(opens)} moments")
        for model, n in self.labelled.items():
            if n and counted.get(model) != n:
                wrong = audit.doubled if (counted.get(model) or 0) > n else audit.lost
                wrong.append(f"{model}: the SLI counts {counted.get(model)} of {n} rows")
        return audit

    def _audit_slack(self, rows: list[Any], audit: Audit) -> None:
        keys = Counter(
            ((m.get("metadata") or {}).get("event_payload") or {}).get("key")
            for m in self.slack.messages
        )
        audit.slack_posts = sum(keys.values())
        known = {r.key for r in rows}
        for row in rows:
            if row.status == "sent" and keys[row.key] == 0:
                audit.lost.append(f"slack never got {row.key} ({row.event})")
            if keys[row.key] > 1:
                audit.doubled.append(f"slack got {row.key} ({row.event}) {keys[row.key]} times")
        for key, n in keys.items():
            if key not in known:
                audit.doubled.append(f"slack got {n} message(s) no outbox row knows: {key}")

    def _audit_pd(self, rows: list[Any], audit: Audit) -> None:
        accepted = self.pd.accepted()
        audit.pd_events = len(accepted)
        by_group: dict[str, list[Any]] = {}
        for row in rows:
            by_group.setdefault(row.payload["group_key"], []).append(row)
        for group, messages in by_group.items():
            sent = [m for m in messages if m.status == "sent"]
            events = [e for e in accepted if e.get("dedup_key") == group]
            incidents = [i for i in self.pd.incidents if i.dedup_key == group]
            opens = sum(m.event == "open" for m in sent)
            if len(events) < len(sent):
                audit.lost.append(f"pagerduty got {len(events)} events of {len(sent)} for {group}")
            audit.resent += max(0, len(events) - len(sent))
            if len(incidents) > max(opens, 1):
                audit.doubled.append(f"pagerduty has {len(incidents)} incidents for {group}")
            if sent and incidents:
                want = {"resolve": "resolved"}.get(sent[-1].event)
                if want and incidents[-1].status != want:
                    audit.lost.append(f"pagerduty incident {group} is {incidents[-1].status}")

    def record(self, scenario: str, extra: str, audit: Audit) -> None:
        line = audit.line(scenario, extra, time.monotonic() - self.started)
        FIGURES.append(line)
        print(line)


def _driver(url: str) -> str:
    """The driver Vigil uses for PostgreSQL (psycopg 3), for the test's own connections."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def run_in_background(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
