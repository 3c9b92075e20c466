"""The HTTP scaffolding every local fake shares: a threaded server on 127.0.0.1 (port picked by
the OS), started and stopped as a context manager, that hands each request to `answer`.

A fake only says what it answers (`answer(request) -> Reply`); this base reads the body, drops
the connection unanswered while `down` is set (an outage as the client sees it), holds every
answer while `gate` (a `threading.Event`) is unset (a server that hangs), writes the reply,
survives a client that gave up first, and then calls `after_answer(name)` with what was
answered (`answered(request)`; the fault suite kills Vigil there, between the server's answer
and Vigil's commit).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """The request target as sent: path and query."""
    headers: dict[str, str]
    raw: bytes

    def header(self, name: str) -> str:
        """A header by case-insensitive name ('' when absent)."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")


@dataclass(frozen=True)
class Reply:
    """An answer: a dict or list goes out as JSON, a string as text, bytes as they are."""

    status: int
    body: dict[str, Any] | list[Any] | str | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode(), "application/json; charset=utf-8"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return self.body, "application/octet-stream"


class FakeHTTPServer:
    """Base of the fakes: subclasses implement `answer`; `None` drops the connection."""

    name = "fake-http"

    def __init__(self) -> None:
        self.down = False
        self.gate: threading.Event | None = None
        self.after_answer: Callable[[str], None] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, request: Request) -> Reply | None:
        raise NotImplementedError

    def answered(self, request: Request) -> str:
        """What `after_answer` is told was answered (by default the request's path)."""
        return request.path

    def __enter__(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll keeps shutdown (one per test) from costing half a second each.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=self.name,
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:<port>`, while running."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"


def _handler(fake: FakeHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"{type(fake).__name__}/1.0"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if fake.down:
                # No status line at all: the client sees a dropped connection, as in an outage.
                self.close_connection = True
                return
            gate = fake.gate
            if gate is not None:
                gate.wait(timeout=60)  # bounded: a test that forgets to open it still ends
            request = Request(self.command, self.path, dict(self.headers.items()), raw)
            reply = fake.answer(request)
            if reply is None:
                # No status line at all: the client sees a dropped connection, as in an outage.
                self.close_connection = True
                return
            payload, content_type = reply.encoded()
            try:
                self.send_response(reply.status)
                headers = {"Content-Type": content_type, **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up first (its timeout fired); nothing left to tell it.
                self.close_connection = True
            hook = fake.after_answer
            if hook is not None:
                hook(fake.answered(request))

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: each fake keeps its own log of requests."""

    return Handler
