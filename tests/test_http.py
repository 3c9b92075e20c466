"""The daemon's HTTP server over real sockets: basic auth from bcrypt hashes, TLS from a
self-signed certificate made here, hundreds of idle connections on a fixed number of
threads, idle connections closed, and web-config files that cannot work refused by name."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry, Counter

from monitor.service.http import WORKERS, HttpServer, serve
from monitor.service.webconfig import WebConfigError, load_web_config
from tests.test_daemon import wait_for

PASSWORD = "correct horse battery staple"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def request(
    server: HttpServer,
    path: str,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.server_address
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("vigil_test_scrapes", "scrapes in this test", registry=reg).inc()
    return reg


def incident_page(incident_id: int) -> str | None:
    """Incident 7 exists; 13 fails to render (a store that does not answer)."""
    if incident_id == 13:
        raise RuntimeError("store down")
    return f"<!doctype html><title>Incident {incident_id}</title>" if incident_id == 7 else None


def start(tmp_path: Path, web_yaml: str | None, **options: float) -> HttpServer:
    web = None
    if web_yaml is not None:
        (tmp_path / "web.yml").write_text(web_yaml, encoding="utf-8")
        web = load_web_config(tmp_path / "web.yml")
    return serve(
        "127.0.0.1",
        0,
        registry(),
        ready=lambda: (True, {"models": {}}),
        alive=lambda: (True, {}),
        status_page=lambda: "<!doctype html><title>Vigil status</title>",
        incident_page=incident_page,
        web=web,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def hashed() -> str:
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture
def authed(tmp_path: Path, hashed: str) -> Iterator[HttpServer]:
    web = f"basic_auth_users:\n  prometheus: '{hashed}'\npublic_paths: [/healthz]\n"
    server = start(tmp_path, web)
    yield server
    server.shutdown()


def test_every_endpoint_but_a_public_probe_needs_the_password(authed: HttpServer) -> None:
    for path in ("/", "/metrics", "/readyz", "/nope"):
        status, headers, _ = request(authed, path)
        assert status == 401, path
        assert headers["WWW-Authenticate"] == 'Basic realm="vigil"'
        assert request(authed, path, basic("prometheus", "wrong"))[0] == 401
        assert request(authed, path, basic("nobody", PASSWORD))[0] == 401
    assert request(authed, "/healthz")[0] == 200  # listed in public_paths
    status, _, body = request(authed, "/metrics", basic("prometheus", PASSWORD))
    assert status == 200 and b"vigil_test_scrapes_total 1.0" in body
    status, headers, body = request(authed, "/", basic("prometheus", PASSWORD))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"Vigil status" in body
    # A second request with the same header is answered from the cache, same result.
    assert request(authed, "/readyz", basic("prometheus", PASSWORD))[0] == 200
    assert request(authed, "/nope", basic("prometheus", PASSWORD))[0] == 404
    assert request(authed, "/readyz", {"Authorization": "Basic !!notbase64"})[0] == 401


def test_runbook_pages_are_served_behind_the_same_password(authed: HttpServer) -> None:
    """Every packaged runbook page is served at /runbooks/<page> as its file's bytes (the
    alert rules link there), only with the password, and nothing else is reachable there."""
    from alerts.runbooks import BUNDLED_DIR

    pages = sorted(BUNDLED_DIR.glob("*.md"))
    assert len(pages) >= 12
    auth = basic("prometheus", PASSWORD)
    for page in pages:
        assert request(authed, f"/runbooks/{page.name}")[0] == 401, page.name
        status, headers, body = request(authed, f"/runbooks/{page.name}", auth)
        assert status == 200 and body == page.read_bytes(), page.name
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
    status, _, body = request(authed, "/runbooks/", auth)
    assert status == 200 and body == (BUNDLED_DIR / "README.md").read_bytes()
    for path in ("/runbooks/../setup.py", "/runbooks/__init__.py", "/runbooks/%2e%2e/x.md"):
        assert request(authed, path, auth)[0] == 404, path


def test_incident_pages_are_a_prefix_route_behind_the_same_password(authed: HttpServer) -> None:
    """`/incidents/<id>` asks for the password before anything else, answers the page for a
    known id, and 404 (never 500) for an unknown, non-numeric or overlong id; a page that
    fails to render is a 500 for that request only."""
    auth = basic("prometheus", PASSWORD)
    for path in ("/incidents/7", "/incidents/8", "/incidents/abc", "/incidents/"):
        assert request(authed, path)[0] == 401, path
    status, headers, body = request(authed, "/incidents/7", auth)
    assert status == 200 and body == b"<!doctype html><title>Incident 7</title>"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    for path in (
        "/incidents/8",
        "/incidents/abc",
        "/incidents/-7",
        "/incidents/7/x",
        "/incidents/%37",
        "/incidents/" + "9" * 19,
        "/incidents/",
        "/incidents",
    ):
        assert request(authed, path, auth)[0] == 404, path  # fmt: skip
    assert request(authed, "/incidents/13", auth)[0] == 500
    status, _, body = request(authed, "/nope", auth)
    assert status == 404 and b"/incidents/<id>" in body
    assert request(authed, "/incidents/7", auth)[0] == 200  # the server still serves


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_with_a_self_signed_certificate_and_auth(tmp_path: Path, hashed: str) -> None:
    cert, _ = self_signed(tmp_path)
    web = (
        "tls_server_config: {cert_file: tls.crt, key_file: tls.key, min_version: TLS12}\n"
        f"basic_auth_users: {{prometheus: '{hashed}'}}\n"
    )
    server = start(tmp_path, web)
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        status, _, body = request(server, "/metrics", basic("prometheus", PASSWORD), trusting)
        assert status == 200 and b"vigil_test_scrapes_total" in body
        assert request(server, "/metrics", None, trusting)[0] == 401
        with pytest.raises(ssl.SSLCertVerificationError):
            request(server, "/metrics", None, ssl.create_default_context())  # unknown CA
        # Plain HTTP to the TLS port gets no HTTP answer.
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            request(server, "/metrics")
        # The server still serves TLS after a plain-text client.
        assert request(server, "/healthz", basic("prometheus", PASSWORD), trusting)[0] == 200
    finally:
        server.shutdown()


def test_three_hundred_idle_connections_hold_no_threads(tmp_path: Path) -> None:
    server = start(tmp_path, None, idle_timeout=120.0)
    before = threading.active_count()
    idle: list[socket.socket] = []
    try:
        for i in range(300):
            sock = socket.create_connection(server.server_address, timeout=10)
            if i % 2:  # half have asked once and keep the connection alive
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            idle.append(sock)
        wait_for("300 connections open", lambda: server.connections == 300 or None, 30)
        # Threads: the request workers at most, not one per connection.
        assert threading.active_count() <= before + WORKERS
        status, _, body = request(server, "/readyz")  # still answers everyone else
        assert status == 200 and b'"ready"' in body
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()


def test_idle_connections_are_closed_after_the_timeout(tmp_path: Path) -> None:
    server = start(tmp_path, None, idle_timeout=0.5)
    try:
        silent = socket.create_connection(server.server_address, timeout=20)
        assert silent.recv(1) == b""  # closed by the server, long before our 20 s
        kept = socket.create_connection(server.server_address, timeout=20)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b'"alive"' not in answer:
            answer += kept.recv(65536)
        assert b"Connection: keep-alive" in answer
        assert kept.recv(1) == b""  # then closed once idle
        slow = socket.create_connection(server.server_address, timeout=20)
        slow.sendall(b"GET /healthz HTTP/1.1\r\n")  # headers never finished
        assert slow.recv(1) == b""
        wait_for("connections released", lambda: server.connections == 0 or None, 10)
    finally:
        server.shutdown()


def test_a_connection_past_the_limit_is_refused_with_503(tmp_path: Path) -> None:
    server = start(tmp_path, None, idle_timeout=60.0, max_connections=2)
    held = [socket.create_connection(server.server_address, timeout=10) for _ in range(2)]
    try:
        wait_for("two connections", lambda: server.connections == 2 or None, 10)
        extra = socket.create_connection(server.server_address, timeout=10)
        assert extra.recv(64).startswith(b"HTTP/1.1 503")
    finally:
        for sock in held:
            sock.close()
        server.shutdown()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("basic_auth_users: {admin: secret}\n", "basic_auth_users.admin: not a bcrypt hash"),
        ("basic_auth_users: {admin: '$2b$12$short'}\n", "basic_auth_users.admin: malformed"),
        ("tls_server_config: {cert_file: a.crt}\n", "tls_server_config.key_file is required"),
        ("tls_server_config: {cert_file: a.crt, key_file: b.key}\n", "no such file"),
        ("tls_server_config: {certfile: a}\n", "unknown key 'certfile'"),
        ("basic_auth: {}\n", "unknown key 'basic_auth'"),
        ("public_paths: [/metrics]\n", "public_paths: only"),
        ("- a list\n", "must be a mapping"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_web_config_that_cannot_work_is_refused_by_name(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_key = self_signed(other)
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config: {{cert_file: {cert}, key_file: {wrong_key}}}\n")
    with pytest.raises(WebConfigError, match="cannot load the certificate or key"):
        load_web_config(path)
