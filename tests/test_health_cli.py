"""`vigil health`, the container's HEALTHCHECK: it reaches a real `vigil run` serving TLS and
basic auth from its web config, where the former `http://127.0.0.1:<port>/healthz` probe could
not (the TLS port answers no plain HTTP)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import pytest
import yaml
from typer.testing import CliRunner, Result

from tests.builders import write_config
from tests.test_daemon import VIGIL, env, free_port, make_config, wait_for, write_source
from tests.test_deploy import DEPLOY, dockerfile_stages
from tests.test_http import self_signed

PASSWORD = "probe-me"


@pytest.fixture
def tls_daemon(tmp_path: Path) -> Iterator[Path]:
    """`vigil run` with TLS and a bcrypt user from `server.web_config_file`; its config."""
    self_signed(tmp_path)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(
        "tls_server_config: {cert_file: tls.crt, key_file: tls.key}\n"
        f"basic_auth_users: {{prometheus: '{hashed}'}}\n"
    )
    write_source(
        f"sqlite:///{tmp_path / 'source.db'}",
        datetime.now(UTC) - timedelta(minutes=50),
        correct=True,
    )
    port = free_port()
    data = make_config(tmp_path, schedule="1h")
    data["server"] = {
        "host": "0.0.0.0",  # the probe goes to 127.0.0.1, as in a container
        "port": port,
        "shutdown_timeout": "5s",
        "web_config_file": "web.yml",
    }
    config = write_config(tmp_path / "vigil.yaml", data)
    with (tmp_path / "vigil.log").open("wb") as out:
        proc = subprocess.Popen(
            [VIGIL, "run", "--config", str(config)],
            cwd=tmp_path, env=env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def listening() -> bool | None:
        if proc.poll() is not None:
            pytest.fail(f"vigil run exited:\n{(tmp_path / 'vigil.log').read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return None
        return True

    try:
        wait_for("vigil run listening", listening, 90)
        yield config
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def health(config: Path, **environ: str) -> Result:
    """`vigil health --config`, in this process (the daemon it probes is a real process)."""
    from monitor.cli.main import app

    return CliRunner().invoke(app, ["health", "--config", str(config)], env=environ)


def test_health_probes_a_tls_daemon_with_its_own_web_config(tls_daemon: Path) -> None:
    """Over HTTPS, trusting the daemon's own certificate: without credentials the 401 is named
    with its remedy (exit 1, unhealthy); with them in the environment, alive (exit 0). The old
    plain-HTTP probe fails against the same daemon."""
    port = yaml.safe_load(tls_daemon.read_text())["server"]["port"]
    with pytest.raises(OSError):  # what the HEALTHCHECK used to run
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4)
    denied = health(tls_daemon)
    assert denied.exit_code == 1, denied.output
    assert f"https://127.0.0.1:{port}/healthz: 401" in denied.output
    assert "public_paths" in denied.output
    alive = health(tls_daemon, VIGIL_HEALTH_USER="prometheus", VIGIL_HEALTH_PASSWORD=PASSWORD)
    assert alive.exit_code == 0, alive.output
    assert f"https://127.0.0.1:{port}/healthz: 200" in alive.output
    assert '"status": "alive"' in alive.output
    assert PASSWORD not in alive.output


def test_health_says_unhealthy_when_nothing_listens(tmp_path: Path) -> None:
    data = make_config(tmp_path, schedule="1h")
    data["server"] = {"host": "127.0.0.1", "port": free_port()}
    result = health(write_config(tmp_path / "vigil.yaml", data))
    assert result.exit_code == 1
    assert "no answer" in result.output and "http://127.0.0.1:" in result.output


def test_the_image_healthcheck_runs_vigil_health_on_the_config_it_runs() -> None:
    final = dict(dockerfile_stages()[-1])
    probe = json.loads(final["HEALTHCHECK"].split("CMD", 1)[1])
    command = json.loads(final["CMD"])
    assert probe[:2] == ["vigil", "health"]
    assert probe[probe.index("--config") + 1] == command[command.index("--config") + 1]
    assert (DEPLOY / "Dockerfile").read_text().count("http://127.0.0.1") == 0
