"""SIGHUP reloads the config of a running `vigil run`, as an operator would send it.

A good file takes effect without a restart: a model added to it starts ticking, the others
keep their schedule (no tick dropped), and `/metrics` shows the new file's hash and a
successful reload. A bad file is logged with its line and field (no secret in the log), the
old config keeps running, and `/metrics` shows the failed reload.
"""

from __future__ import annotations

import copy
import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_config
from monitor.core.clock import SimulatedClock
from monitor.engine.runtime import open_runtime
from monitor.service.daemon import Daemon
from monitor.service.reload import config_hash
from tests.builders import write_config
from tests.test_daemon import VIGIL, env, free_port, make_config, wait_for, write_source
from tests.test_ha import WAIT, Daemons

HOOK_SECRET = "hook-signing-secret-8842"


def base_config(tmp_path: Path) -> dict[str, Any]:
    data = make_config(tmp_path, schedule="1s")
    data["server"] = {"host": "127.0.0.1", "port": free_port(), "shutdown_timeout": "5s"}
    # A receiver with a secret from the environment, routed nowhere: it must never be logged.
    data["receivers"]["hook"] = {
        "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "${HOOK_SECRET}"}
    }
    return data


class Running:
    """One `vigil run` on a config file that the test rewrites between SIGHUPs."""

    def __init__(self, tmp_path: Path, data: dict[str, Any]):
        self.path = write_config(tmp_path / "vigil.yaml", data)
        self.log = tmp_path / "daemon.log"
        self.port = data["server"]["port"]
        self.group = Daemons(tmp_path, data)  # reused for its /metrics scraping
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [VIGIL, "run", "--config", str(self.path), "--log-format", "json"],
                cwd=tmp_path,
                env={**env(), "HOOK_SECRET": HOOK_SECRET},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.group.procs.append((self.proc, self.port, self.log))

    def value(self, name: str, **labels: str) -> float:
        return self.group.value(0, name, **labels)

    def hashes(self) -> set[str]:
        scrape = wait_for("/metrics", lambda: self.group.scrape(0), WAIT)
        return {labels["hash"] for labels, v in scrape["vigil_config_hash_info"] if v == 1}

    def ticks(self, model: str) -> float:
        return self.value("vigil_tick_duration_seconds_count", model=model)

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == name:
                    out.append(record)
        return out

    def reload(self, data: dict[str, Any] | str) -> None:
        if isinstance(data, str):
            self.path.write_text(data, encoding="utf-8")
        else:
            write_config(self.path, data)
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Running, dict[str, Any]]]:
    start = datetime.now(UTC) - timedelta(minutes=50)
    write_source(f"sqlite:///{tmp_path / 'source.db'}", start, correct=True)
    data = base_config(tmp_path)
    daemon = Running(tmp_path, data)
    yield daemon, data
    daemon.group.stop_all()


def test_sighup_with_a_good_config_adds_a_model_and_changes_the_hash(
    running: tuple[Running, dict[str, Any]],
) -> None:
    """A second model added to the file ticks after SIGHUP; the first keeps ticking; the
    process stays up; /metrics shows the new hash and one successful reload."""
    daemon, data = running
    wait_for("two ticks of m", lambda: daemon.ticks("m") >= 2 or None, WAIT)
    before = daemon.hashes()
    assert before == {config_hash(daemon.path)}
    assert daemon.value("vigil_config_last_reload_timestamp_seconds") == 0

    grown = copy.deepcopy(data)
    grown["models"]["m2"] = copy.deepcopy(data["models"]["m"])
    daemon.reload(grown)
    wait_for("m2 ticks", lambda: daemon.ticks("m2") >= 2 or None, WAIT)
    ticks_of_m = daemon.ticks("m")
    wait_for("m ticks on", lambda: daemon.ticks("m") > ticks_of_m or None, WAIT)

    after = daemon.hashes()
    assert after == {config_hash(daemon.path)} and after != before
    assert daemon.value("vigil_config_reloads_total", result="success") == 1
    assert daemon.value("vigil_config_reloads_total", result="failure") == 0
    assert daemon.value("vigil_config_last_reload_successful") == 1
    assert daemon.value("vigil_config_last_reload_timestamp_seconds") > 0
    assert daemon.value("vigil_model_tick_interval_seconds", model="m2") == 1
    [event] = daemon.events("config reloaded")
    assert event["added"] == ["m2"]
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


def test_sighup_with_a_bad_config_keeps_the_old_one(
    running: tuple[Running, dict[str, Any]],
) -> None:
    """A file with a zero window is refused: the log names its line and field without the
    secret, the model keeps ticking on the old config, /metrics shows the failure and the old
    hash; a good file after it is applied."""
    daemon, data = running
    wait_for("a tick of m", lambda: daemon.ticks("m") >= 1 or None, WAIT)
    good_hash = daemon.hashes()

    broken = copy.deepcopy(data)
    broken["models"]["m"]["slos"][0]["window"] = "0h"
    broken["models"]["gone"] = copy.deepcopy(data["models"]["m"])
    daemon.reload(broken)
    wait_for(
        "the failed reload",
        lambda: daemon.value("vigil_config_reloads_total", result="failure") == 1 or None,
        WAIT,
    )
    ticks_of_m = daemon.ticks("m")
    wait_for("m ticks on", lambda: daemon.ticks("m") >= ticks_of_m + 2 or None, WAIT)
    assert daemon.ticks("gone") == 0  # the bad file's new model never started
    assert daemon.value("vigil_config_last_reload_successful") == 0
    assert daemon.hashes() == good_hash
    [failure] = daemon.events("config reload failed")
    window = [p for p in failure["problems"] if ".slos.0.window: must be longer than 0s" in p]
    assert window and window[0].startswith(f"{daemon.path}:")
    assert failure["kept"] == "old config"
    assert HOOK_SECRET not in daemon.log.read_text(encoding="utf-8")

    daemon.reload(data)  # the fix: applied, and counted as a success
    wait_for(
        "the good reload",
        lambda: daemon.value("vigil_config_reloads_total", result="success") == 1 or None,
        WAIT,
    )
    assert daemon.value("vigil_config_last_reload_successful") == 1
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


def test_sighup_refuses_a_new_store(
    running: tuple[Running, dict[str, Any]], tmp_path: Path
) -> None:
    """Moving to another store needs a restart: the reload is refused with that reason."""
    daemon, data = running
    wait_for("a tick of m", lambda: daemon.ticks("m") >= 1 or None, WAIT)
    moved = copy.deepcopy(data)
    moved["store"] = f"sqlite:///{tmp_path / 'other.db'}"
    daemon.reload(moved)
    wait_for(
        "the refused reload",
        lambda: daemon.value("vigil_config_reloads_total", result="failure") == 1 or None,
        WAIT,
    )
    [failure] = daemon.events("config reload failed")
    assert any("the store cannot change without a restart" in p for p in failure["problems"])
    assert not (tmp_path / "other.db").exists()
    assert daemon.stop() == 0


def test_reload_keeps_the_next_run_of_unchanged_models(tmp_path: Path) -> None:
    """In one process: after a reload that adds a model and slows another, the unchanged
    model's next run is exactly where it was (no tick dropped or delayed), the new model
    runs at once, and the slowed one runs no later than it would have."""
    write_source(f"sqlite:///{tmp_path / 'source.db'}", datetime.now(UTC), correct=True)
    data = make_config(tmp_path, schedule="1h")
    data["server"] = {"port": 0}
    data["models"]["slow"] = copy.deepcopy(data["models"]["m"])
    path = write_config(tmp_path / "vigil.yaml", data)
    rt = open_runtime(load_config(path), tmp_path)
    daemon = Daemon(rt, SimulatedClock(datetime.now(UTC)), config_path=path)
    daemon.start()
    try:
        daemon.scheduler.pause()  # nothing runs: the test reads the plan, not its effects
        before = {job.id: job.next_run_time for job in daemon.scheduler.get_jobs()}
        changed = copy.deepcopy(data)
        changed["models"]["new"] = copy.deepcopy(data["models"]["m"])
        changed["models"]["slow"]["schedule"] = "2h"
        write_config(path, changed)
        asked = datetime.now(UTC)
        assert daemon.reload()
        after = {job.id: job.next_run_time for job in daemon.scheduler.get_jobs()}
        assert after["tick:m"] == before["tick:m"]
        assert after["tick:slow"] <= before["tick:slow"]
        assert daemon.scheduler.get_job("tick:slow").trigger.interval == timedelta(hours=2)
        assert after["tick:new"] <= datetime.now(UTC) and after["tick:new"] >= asked
        assert rt.config.models["new"].schedule == timedelta(hours=1)

        del changed["models"]["new"]
        write_config(path, changed)
        assert daemon.reload()
        assert daemon.scheduler.get_job("tick:new") is None
        count = {"model": "new"}
        assert daemon.registry.get_sample_value("vigil_tick_duration_seconds_count", count) is None
        daemon.run_tick("new")  # a run already queued for the removed model does nothing
        assert daemon.registry.get_sample_value("vigil_tick_duration_seconds_count", count) is None
        assert daemon.registry.get_sample_value("vigil_tick_failures_total", count) == 0
    finally:
        daemon.stop()
        rt.close()
