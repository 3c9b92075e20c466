"""SIGHUP under a running daemon with open incidents: a bad config, then a good one.

Two models breach; a config with a zero SLO window is written over the daemon's file and
SIGHUP sent: the reload is refused and logged, both models keep ticking on the old config.
Then a valid config that adds a third model: it starts ticking and breaches too. Every model
recovers. Nothing is lost or doubled across the two reloads: every row is counted once and
every message delivered once (`World.audit`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.faults.harness import Daemon, World


def write(daemon: Daemon, data: dict[str, Any]) -> None:
    """A config for the running daemon: its port kept (a new one needs a restart)."""
    data = copy.deepcopy(data)
    data["server"] = {**data["server"], "port": daemon.port}
    daemon.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_sighup_with_bad_then_good_config_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with World(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", models=3) as world:
        full = world.config()
        first = copy.deepcopy(full)
        del first["models"]["m2"], first["sources"]["src-m2"]
        world.overrides = {"models": first["models"], "sources": first["sources"]}
        daemon = world.start()
        daemon.wait_healthy()
        for name in ("m0", "m1"):
            world.feed(name, correct=False)
        world.wait("two breaches", lambda s: s["incidents"].get("firing", 0) == 2, 120)

        broken = copy.deepcopy(full)
        broken["models"]["m0"]["slos"][0]["window"] = "0h"
        write(daemon, broken)
        daemon.reload()
        world.wait("the refused reload", lambda s: daemon.logged("config reload failed") == 1, 60)
        ticks = daemon.logged("tick")
        world.wait("ticks on the old config", lambda s: daemon.logged("tick") >= ticks + 4, 60)
        assert daemon.logged("config reloaded") == 0

        write(daemon, full)
        daemon.reload()
        world.wait("the applied reload", lambda s: daemon.logged("config reloaded") == 1, 60)
        world.feed("m2", correct=False)
        world.wait("three breaches", lambda s: s["incidents"].get("firing", 0) == 3, 120)
        for name in world.models:
            world.feed(name, correct=True)
        world.settle()
        assert daemon.alive and daemon.stop() == 0
        audit = world.audit()
        world.record(
            "reload",
            "SIGHUP with a zero window (refused, old config kept), then with a third model "
            f"(applied); {daemon.logged('tick')} ticks",
            audit,
        )
        assert audit.lost == [] and audit.doubled == []
        assert daemon.logged("config reload failed") == 1 and daemon.logged("config reloaded") == 1
