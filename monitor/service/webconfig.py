"""TLS and basic authentication for the daemon's endpoints, from a web-config file written as
Prometheus' exporter-toolkit reads one (`--web.config.file`), so one file format serves
Vigil and every exporter beside it:

```yaml
tls_server_config:
  cert_file: /etc/vigil/tls.crt     # relative paths: to this file's folder
  key_file: /etc/vigil/tls.key
  min_version: TLS12                # TLS10..TLS13, default TLS12
  client_auth_type: NoClientCert    # or RequireAndVerifyClientCert (with client_ca_file)
  client_ca_file: ca.crt
basic_auth_users:
  prometheus: $2b$12$...            # bcrypt hashes: htpasswd -nBC 12 "" | tr -d ':\n'
public_paths: [/healthz]            # Vigil's own key: probes a kubelet may call without auth
```

Passwords are checked with bcrypt; a successful check is remembered by the SHA-256 of the
header it came in (as exporter-toolkit caches), so a scrape every 15 s does not pay for a
bcrypt round each time while a wrong password always does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_KEYS = {"cert_file", "key_file", "min_version", "client_auth_type", "client_ca_file"}
TOP_KEYS = {"tls_server_config", "basic_auth_users", "public_paths"}
PROBE_PATHS = {"/healthz", "/readyz"}
CACHE_LIMIT = 256


class WebConfigError(ValueError):
    """The web-config file cannot be used; the message names the file and the key."""


@dataclass
class TLSConfig:
    cert_file: Path
    key_file: Path
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    client_ca_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """A server context; certificates are read now, so a bad file fails at start."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        context.load_cert_chain(self.cert_file, self.key_file)
        context.verify_mode = self.client_auth
        if self.client_ca_file is not None:
            context.load_verify_locations(self.client_ca_file)
        return context


@dataclass
class WebConfig:
    source: str = "(none)"
    tls: TLSConfig | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    """user -> bcrypt hash."""
    public_paths: frozenset[str] = frozenset()

    @property
    def auth(self) -> bool:
        return bool(self.users)


def _fail(path: Path, message: str) -> WebConfigError:
    return WebConfigError(f"{path}: {message}")


def _tls(path: Path, raw: object) -> TLSConfig:
    if not isinstance(raw, dict):
        raise _fail(path, "tls_server_config must be a mapping with cert_file and key_file")
    unknown = sorted(set(raw) - TLS_KEYS)
    if unknown:
        raise _fail(path, f"tls_server_config: unknown key {unknown[0]!r}")
    for key in ("cert_file", "key_file"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _fail(path, f"tls_server_config.{key} is required (a file path)")

    def file(key: str) -> Path:
        found = (path.parent / str(raw[key])).expanduser()
        if not found.is_file():
            raise _fail(path, f"tls_server_config.{key}: no such file {found}")
        return found

    version = str(raw.get("min_version", "TLS12"))
    if version not in TLS_VERSIONS:
        raise _fail(
            path, f"tls_server_config.min_version: {version!r} (one of {list(TLS_VERSIONS)})"
        )
    client = str(raw.get("client_auth_type", "NoClientCert"))
    if client not in CLIENT_AUTH:
        raise _fail(path, f"tls_server_config.client_auth_type: unknown {client!r}")
    ca = file("client_ca_file") if raw.get("client_ca_file") else None
    if client == "RequireAndVerifyClientCert" and ca is None:
        raise _fail(path, "tls_server_config: RequireAndVerifyClientCert needs client_ca_file")
    tls = TLSConfig(
        file("cert_file"), file("key_file"), TLS_VERSIONS[version], CLIENT_AUTH[client], ca
    )
    try:
        tls.context()
    except (ssl.SSLError, OSError) as exc:
        raise _fail(
            path, f"tls_server_config: cannot load the certificate or key ({exc})"
        ) from None
    return tls


def _users(path: Path, raw: object) -> dict[str, bytes]:
    if not isinstance(raw, dict):
        raise _fail(path, "basic_auth_users must map user names to bcrypt hashes")
    users: dict[str, bytes] = {}
    for user, hashed in raw.items():
        text = str(hashed or "")
        if not text.startswith(("$2a$", "$2b$", "$2y$")):
            raise _fail(path, f"basic_auth_users.{user}: not a bcrypt hash (it must start $2b$)")
        try:
            bcrypt.checkpw(b"", text.encode())  # malformed hashes raise here, not per request
        except ValueError:
            raise _fail(path, f"basic_auth_users.{user}: malformed bcrypt hash") from None
        users[str(user)] = text.encode()
    return users


def load_web_config(path: Path) -> WebConfig:
    """Read and check the file; every problem is a `WebConfigError` naming file and key."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        raw: Any = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror})") from None
    except YAMLError as exc:
        raise _fail(path, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise _fail(path, "must be a mapping (tls_server_config, basic_auth_users)")
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise _fail(path, f"unknown key {unknown[0]!r} (known: {sorted(TOP_KEYS)})")
    config = WebConfig(source=str(path))
    if raw.get("tls_server_config"):
        config.tls = _tls(path, raw["tls_server_config"])
    if raw.get("basic_auth_users"):
        config.users = _users(path, raw["basic_auth_users"])
    public = raw.get("public_paths") or []
    if not isinstance(public, list) or not set(public) <= PROBE_PATHS:
        raise _fail(path, f"public_paths: only {sorted(PROBE_PATHS)} may be left open")
    config.public_paths = frozenset(str(p) for p in public)
    return config


class Authenticator:
    """Checks `Authorization: Basic ...` against the bcrypt hashes; thread-safe."""

    def __init__(self, users: dict[str, bytes]):
        self.users = users
        self._good: dict[bytes, str] = {}
        self._lock = threading.Lock()

    def check(self, header: str | None) -> str | None:
        """The user name when the header carries a valid user and password, else None."""
        if not header or header[:6].lower() != "basic ":
            return None
        digest = hashlib.sha256(header.encode("utf-8", "replace")).digest()
        with self._lock:
            for known, user in self._good.items():
                if hmac.compare_digest(known, digest):
                    return user
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        hashed = self.users.get(user)
        if not sep or hashed is None:
            bcrypt.checkpw(password.encode(), _dummy_hash())  # same cost for unknown users
            return None
        if not bcrypt.checkpw(password.encode(), hashed):
            return None
        with self._lock:
            if len(self._good) >= CACHE_LIMIT:
                self._good.clear()
            self._good[digest] = user
        return user


@functools.cache
def _dummy_hash() -> bytes:
    return bcrypt.hashpw(b"vigil", bcrypt.gensalt(rounds=10))
