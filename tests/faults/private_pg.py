"""A PostgreSQL server of the test's own, on a temporary directory and a free port.

The shared server on 5432 serves every other test on the machine: restarting it would break
them. `initdb` and `pg_ctl` (found beside the installed server, /usr/lib/postgresql/*/bin)
make a throwaway cluster instead, with trust authentication on 127.0.0.1, that a scenario
may restart or stop at will. Run as root, the server runs as the `postgres` user (PostgreSQL
refuses to run as root).

A server must not outlive its test run: `close()` runs at the end of the session, at
interpreter exit (`atexit`) and after SIGTERM (see conftest.py). A run killed with -9 runs
none of them, so each new cluster first stops and removes the clusters whose owning process
is gone (`reap_stale`): the directory names its owner's pid in `owner`.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.test_daemon import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(f"{name} not found: install the PostgreSQL server package")
    return on_path


PREFIX = "vigil-faults-pg-"
OWNER = "owner"
"""File in a cluster's directory: the pid of the process that made it."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def reap_stale() -> list[Path]:
    """Stop (immediately) and remove every private cluster whose owner process has died; a
    cluster without an owner file, or with a live owner, is left alone. Returns the removed."""
    removed = []
    for root in sorted(Path(tempfile.gettempdir()).glob(PREFIX + "*")):
        try:
            owner = int((root / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        pidfile = root / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            postmaster = int(pidfile.read_text().split()[0])
            if _alive(postmaster):
                os.kill(postmaster, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
                _wait_gone(postmaster)
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def _wait_gone(pid: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


class PrivatePostgres:
    def __init__(self) -> None:
        reap_stale()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / OWNER).write_text(str(os.getpid()))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        self._closed = False
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        atexit.register(self.close)
        self._run(
            _bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        """A fresh database on this server, for one scenario."""
        self.psql(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def psql(self, sql: str) -> None:
        self._run(
            _bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c", sql
        )

    def _options(self) -> str:
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=60"
        )

    def start(self) -> None:
        self._ctl("start", "-o", self._options(), "-l", str(self.root / "server.log"))

    def restart(self) -> None:
        """As a crash and a restart: `immediate` ends every connection without a goodbye."""
        self._ctl(
            "restart", "-m", "immediate", "-o", self._options(), "-l", str(self.root / "server.log")
        )

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")

    def close(self) -> None:
        """Stop the server and remove its files; once, whichever path calls it first."""
        if self._closed:
            return
        self._closed = True
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _ctl(self, *args: str) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args)

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        subprocess.run(
            [*prefix, *command],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.root,
        )
