"""A PostgreSQL server of the test's own, on a temporary directory and a free port.

The shared server on 5432 serves every other test on the machine: restarting it would break
them. `initdb` and `pg_ctl` (found beside the installed server, /usr/lib/postgresql/*/bin)
make a throwaway cluster instead, with trust authentication on 127.0.0.1, that a scenario
may restart or stop at will. Run as root, the server runs as the `postgres` user (PostgreSQL
refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
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


class PrivatePostgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vigil-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
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
        try:
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
