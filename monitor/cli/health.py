"""`vigil health`: the liveness probe a container's HEALTHCHECK runs, speaking to the local
daemon the way that daemon serves: plain HTTP, or HTTPS and basic auth from the same web-config
file `vigil run` reads (`server.web_config_file` or `--web-config-file`).

A hard-coded `http://127.0.0.1:9464/healthz` marks a healthy daemon unhealthy as soon as TLS is
on (the server answers no plain HTTP), so the probe reads the same files instead. It trusts the
daemon's own certificate file (the server is this host's own process: the name on the
certificate need not be 127.0.0.1), and sends a password only if one is in the environment
(`VIGIL_HEALTH_USER`, `VIGIL_HEALTH_PASSWORD`): the web config holds bcrypt hashes only, so
the simplest way is `public_paths: [/healthz]`.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli.common import ConfigOption, fail, load
from monitor.config.models import VigilConfig

if TYPE_CHECKING:
    from monitor.service.webconfig import WebConfig

USER_ENV, PASSWORD_ENV = "VIGIL_HEALTH_USER", "VIGIL_HEALTH_PASSWORD"
UNHEALTHY = 1
"""A HEALTHCHECK's "unhealthy" (Docker reserves 2; a config that cannot be read is 2 anyway)."""


def web_config(cfg: VigilConfig, config: Path, option: Path | None) -> WebConfig | None:
    """The web config `vigil run` uses: the option, else the config's `server.web_config_file`
    (relative to the config file's folder); exits 2 naming the problem if it cannot be used."""
    from monitor.service.webconfig import WebConfigError, load_web_config

    path = option
    if path is None and cfg.server.web_config_file:
        path = config.parent / cfg.server.web_config_file
    try:
        return load_web_config(path) if path is not None else None
    except WebConfigError as exc:
        fail(f"web config: {exc}")


def probe_host(host: str) -> str:
    """Where to reach a server bound to `host` from the same machine."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def health(
    config: ConfigOption,
    web_config_file: Annotated[
        Path | None,
        typer.Option(
            "--web-config-file",
            "--web.config.file",
            help="The web config `vigil run` was given, if not server.web_config_file.",
        ),
    ] = None,
    path: Annotated[str, typer.Option(help="The endpoint to probe.")] = "/healthz",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 4.0,
) -> None:
    """Probe the local daemon's /healthz over HTTP or HTTPS, as its web config says (for a
    container HEALTHCHECK); exit 0 when it answers 200, 1 otherwise with the reason, 2 when the
    config cannot be read."""
    cfg = load(config)
    web = web_config(cfg, config, web_config_file)
    host, port = probe_host(cfg.server.host), cfg.server.port
    conn: http.client.HTTPConnection
    if web is not None and web.tls is not None:
        context = ssl.create_default_context(cafile=str(web.tls.cert_file))
        context.check_hostname = False  # our own process; its certificate names the service
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a leaf certificate as anchor
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        scheme = "https"
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        scheme = "http"
    headers = {}
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    url = f"{scheme}://{host}:{port}{path}"
    try:
        conn.request("GET", path, headers=headers)
        answer = conn.getresponse()
        status, body = answer.status, answer.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        fail(f"{url}: no answer ({type(exc).__name__}: {exc})", UNHEALTHY)
    finally:
        conn.close()
    if status == 401:
        fail(
            f"{url}: 401, a password is required: add {path} to public_paths in the web "
            f"config, or set {USER_ENV} and {PASSWORD_ENV}",
            UNHEALTHY,
        )
    if status != 200:
        fail(f"{url}: {status} {_detail(body)}", UNHEALTHY)
    typer.echo(f"{url}: {status} {_detail(body)}")


def _detail(body: str) -> str:
    try:
        return json.dumps(json.loads(body), sort_keys=True)
    except ValueError:
        return body.strip()[:200]
