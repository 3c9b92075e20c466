"""The fault suite's private PostgreSQL cluster does not outlive its test run: one left by a
run killed with -9 (no finalizer, no atexit) is stopped and removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.faults.private_pg import _alive, reap_stale

ROOT = Path(__file__).resolve().parents[2]
OWNER = (
    "from tests.faults.private_pg import PrivatePostgres\n"
    "server = PrivatePostgres()\n"
    "print(server.root, flush=True)\n"
    "import time; time.sleep(600)\n"
)


def test_a_cluster_left_by_a_killed_run_is_stopped_by_the_next() -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        root = Path(owner.stdout.readline().strip())
        postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
        assert _alive(postmaster)
        assert root not in reap_stale()  # its owner lives: left alone
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
    assert _alive(postmaster)  # a killed run leaves its server running...
    assert root in reap_stale()  # ...until the next run stops it and removes its files
    assert not _alive(postmaster) and not root.exists()
