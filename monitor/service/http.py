"""The daemon's HTTP server: `/` (the status page), `/incidents/<id>` (an incident's evidence
page), `/metrics` for Prometheus, `/healthz` and `/readyz` for orchestrators, optionally behind
TLS and basic auth (`monitor.service.webconfig`). Routes are exact paths, plus prefix routes
that take the rest of the path (`PrefixRoute`); both sit behind the same authentication.

`/healthz` says whether the process is alive and worth keeping (a restart would not help a
store outage, so it does not look at the store); `/readyz` says whether this deployment is
doing its job: the store answers, the scheduler runs, every model ticked recently and none
keeps failing. Both answer JSON that names what is wrong, so a failing probe explains itself
in `kubectl describe`.

One asyncio event loop in one thread holds every connection, so an idle keep-alive connection
costs a socket and a coroutine, not a thread (the standard library's threading server held
one thread per idle connection, 259 for 259). The work behind a request (a store query, a
scrape, a page, a bcrypt check) runs in a small fixed pool of worker threads. A connection
that sends no complete request within `idle_timeout` (including the TLS handshake) is closed;
beyond `max_connections` new ones get a 503 and are closed at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from alerts.incidents import EVIDENCE_PREFIX
from alerts.runbooks import SERVED_PREFIX, bundled_pages
from monitor.service.webconfig import Authenticator, WebConfig

log = structlog.get_logger("vigil.http")
HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
HEADER_LIMIT = 16 * 1024
BODY_LIMIT = 64 * 1024
WORKERS = 4
ID = re.compile(r"[0-9]{1,18}")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[], Response]
PrefixRoute = Callable[[str], Response]
"""Serves every path under a prefix; called with the rest of the path (`/incidents/7` -> `7`)
and answers 404 itself for a rest it does not know."""


def json_response(status: int, body: dict[str, Any]) -> Response:
    return Response(status, json.dumps(body, default=str).encode(), "application/json")


@dataclass
class Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


def parse_head(head: bytes) -> Request | None:
    """The request line and headers, or None when they are not HTTP/1.x."""
    try:
        lines = head.decode("iso-8859-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        return None
    if version not in {"HTTP/1.0", "HTTP/1.1"}:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    return Request(method.upper(), target.split("?", 1)[0], version, headers)


class HttpServer:
    """Serves `routes` from one event-loop thread; `server_address` tells the bound port."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: dict[str, Route],
        web: WebConfig | None = None,
        idle_timeout: float = 30.0,
        max_connections: int = 512,
        prefixes: dict[str, PrefixRoute] | None = None,
    ):
        self.routes = routes
        self.prefixes = prefixes or {}
        self.web = web or WebConfig()
        self.auth = Authenticator(self.web.users) if self.web.auth else None
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.connections = 0
        self.scheme = "https" if self.web.tls else "http"
        self._writers: set[asyncio.StreamWriter] = set()
        self._pool = concurrent.futures.ThreadPoolExecutor(WORKERS, "vigil-http-worker")
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        started: concurrent.futures.Future[tuple[str, int]] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(host, port, started), name="vigil-http", daemon=True
        )
        self._thread.start()
        self.server_address = started.result()  # raises the bind error, if any

    def _run(self, host: str, port: int, started: concurrent.futures.Future[Any]) -> None:
        asyncio.set_event_loop(self._loop)
        # Failed TLS handshakes and resets from scanners are the clients' problem: one debug
        # line each, not an error with a traceback.
        self._loop.set_exception_handler(
            lambda _loop, context: log.debug("http connection error", error=context.get("message"))
        )
        context = self.web.tls.context() if self.web.tls else None
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(
                    self._client,
                    host,
                    port,
                    ssl=context,
                    ssl_handshake_timeout=self.idle_timeout if context else None,
                    limit=HEADER_LIMIT,
                    backlog=1024,
                )
            )
        except Exception as exc:
            started.set_exception(exc)
            self._loop.close()
            return
        started.set_result(self._server.sockets[0].getsockname()[:2])
        self._loop.run_forever()
        self._loop.close()

    # -- one connection ----------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= self.max_connections:
            await self._send(writer, None, Response(503, b"too many connections\n"), False)
            await self._close(writer)
            return
        self.connections += 1
        self._writers.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        finally:
            self.connections -= 1
            self._writers.discard(writer)
            await self._close(writer)

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; True to keep the connection for the next one."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout)
        except (TimeoutError, asyncio.IncompleteReadError):
            return False  # idle too long, or closed between requests
        except asyncio.LimitOverrunError:
            await self._send(writer, None, Response(431, b"request headers too large\n"), False)
            return False
        request = parse_head(head)
        if request is None:
            await self._send(writer, None, Response(400, b"not an HTTP/1.x request\n"), False)
            return False
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > BODY_LIMIT:
            await self._send(writer, request, Response(413, b"request body too large\n"), False)
            return False
        if int(length):
            await asyncio.wait_for(reader.readexactly(int(length)), self.idle_timeout)
        response = await self._respond(request)
        await self._send(writer, request, response, request.keep_alive)
        return request.keep_alive

    async def _respond(self, request: Request) -> Response:
        if request.method not in {"GET", "HEAD"}:
            return Response(405, b"only GET and HEAD\n", headers={"Allow": "GET, HEAD"})
        route = self.find(request.path)
        if self.auth is not None and request.path not in self.web.public_paths:
            loop = asyncio.get_running_loop()
            user = await loop.run_in_executor(
                self._pool, self.auth.check, request.headers.get("authorization")
            )
            if user is None:
                return Response(
                    401,
                    b"authentication required\n",
                    headers={"WWW-Authenticate": 'Basic realm="vigil"'},
                )
        if route is None:
            paths = sorted([*self.routes, *(p + "<id>" for p in self.prefixes)])
            return json_response(404, {"error": "not found", "paths": paths})
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, route)
        except Exception as exc:  # a page must not take the server down
            return Response(500, f"internal error: {type(exc).__name__}\n".encode())

    def find(self, path: str) -> Route | None:
        """The exact route, else the longest prefix route bound to the rest of the path.
        Authentication is decided before and apart from this, so every route is behind it."""
        route = self.routes.get(path)
        if route is not None:
            return route
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            if path.startswith(prefix) and len(path) > len(prefix):
                return functools.partial(self.prefixes[prefix], path[len(prefix) :])
        return None

    async def _send(
        self, writer: asyncio.StreamWriter, request: Request | None, response: Response, keep: bool
    ) -> None:
        reason = HTTPStatus(response.status).phrase
        head = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            f"Connection: {'keep-alive' if keep else 'close'}",
            *(f"{k}: {v}" for k, v in response.headers.items()),
        ]
        if keep:
            head.append(f"Keep-Alive: timeout={int(self.idle_timeout)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if request is None or request.method != "HEAD":
            data += response.body
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.idle_timeout)

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 2)

    # -- lifecycle (called from other threads) -----------------------------------------------

    def shutdown(self) -> None:
        """Stop listening, close every connection and the loop; waits at most a few seconds."""
        if self._loop.is_closed():
            return

        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()
            await asyncio.sleep(0)

        with contextlib.suppress(RuntimeError, concurrent.futures.TimeoutError):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def server_close(self) -> None:
        """For symmetry with the standard library's servers: `shutdown` closed everything."""


def serve(
    host: str,
    port: int,
    registry: CollectorRegistry,
    ready: HealthCheck,
    alive: HealthCheck | None = None,
    status_page: Callable[[], str] | None = None,
    web: WebConfig | None = None,
    idle_timeout: float = 30.0,
    max_connections: int = 512,
    incident_page: Callable[[int], str | None] | None = None,
) -> HttpServer:
    """Start serving in a background thread; raises OSError when the port cannot be bound."""

    def metrics() -> Response:
        return Response(200, generate_latest(registry), CONTENT_TYPE_LATEST)

    def healthz() -> Response:
        ok, detail = alive() if alive else (True, {})
        return json_response(200 if ok else 503, {"status": "alive" if ok else "dead", **detail})

    def readyz() -> Response:
        ok, detail = ready()
        return json_response(
            200 if ok else 503, {"status": "ready" if ok else "not ready", **detail}
        )

    routes: dict[str, Route] = {"/metrics": metrics, "/healthz": healthz, "/readyz": readyz}
    routes.update(runbook_routes())
    if status_page is not None:
        page = status_page
        routes["/"] = lambda: Response(200, page().encode(), "text/html; charset=utf-8")
    prefixes = {EVIDENCE_PREFIX: incident_route(incident_page)} if incident_page else {}
    return HttpServer(host, port, routes, web, idle_timeout, max_connections, prefixes)


def incident_route(render: Callable[[int], str | None]) -> PrefixRoute:
    """`/incidents/<id>`: the incident's evidence page. The id is plain decimal digits (at
    most 18, so it fits the store's integer); anything else, and an id the store does not
    know, is a 404: no request reaches the store with a value it cannot take."""

    def route(rest: str) -> Response:
        if not ID.fullmatch(rest):
            return json_response(404, {"error": f"no incident {rest[:40]!r}"})
        html = render(int(rest))
        if html is None:
            return json_response(404, {"error": f"no incident {int(rest)}"})
        return Response(200, html.encode(), "text/html; charset=utf-8")

    return route


def runbook_routes() -> dict[str, Route]:
    """`/runbooks/<page>` for every packaged runbook page (and `/runbooks/` for the index),
    as plain text a browser shows: the alert rules' links point here. Only these exact paths
    are served, so no request can reach another file."""

    def page(path: Path) -> Route:
        return lambda: Response(200, path.read_bytes(), "text/plain; charset=utf-8")

    routes = {SERVED_PREFIX + name: page(path) for name, path in bundled_pages().items()}
    index = routes.get(SERVED_PREFIX + "README.md")
    if index is not None:
        routes[SERVED_PREFIX] = index
    return routes
