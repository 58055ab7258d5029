"""HTTP endpoints: /metrics renders, /healthz says cycles are being attempted, /readyz says forecasts are fresh.

Only GET and HEAD exist; nothing here changes state or triggers work. With a web config file (webguard) every
path asks for basic auth, and TLS is negotiated in each connection's own thread.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE

from promcast.daemon.http.webguard import WebGuard
from promcast.daemon.logs import get_logger
from promcast.daemon.settings import ConfigError

__all__ = ["HttpServer"]

log = get_logger("promcast.http")

Readiness = Callable[[], tuple[bool, list[str]]]  # (ok, the reasons it is not); also the shape of health


def _healthy() -> tuple[bool, list[str]]:
    return True, []


Render = Callable[[bool], bytes]  # the /metrics page; True asks for OpenMetrics
HANDSHAKE_SECONDS = 10.0  # a client that opens a connection and never completes TLS frees its thread after this


def _wants_openmetrics(accept: str) -> bool:
    """As client_python's handler negotiates: OpenMetrics when the scraper lists it, else the text format."""
    return any(part.split(";")[0].strip() == "application/openmetrics-text" for part in accept.split(","))


def _wants_gzip(accept_encoding: str) -> bool:
    """gzip where the client lists it with a quality above 0 (``gzip;q=0`` refuses it, RFC 9110)."""
    for part in accept_encoding.split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        if coding.lower() != "gzip":
            continue
        q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


class _Server(ThreadingHTTPServer):
    """A client that goes away mid-answer (a scrape timeout, ``curl -m``) costs one JSON log line, not the
    standard library's traceback on stderr."""

    daemon_threads = True
    guard: WebGuard | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS here, in the connection's thread: a slow or plain-HTTP client never holds up the accept loop."""
        if self.guard is None or not self.guard.tls:
            super().finish_request(request, client_address)
            return
        context = self.guard.current().context
        assert context is not None  # TLS stays on for the life of the process
        conn = context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            conn.settimeout(HANDSHAKE_SECONDS)
            try:
                conn.do_handshake()
            except OSError as exc:  # ssl.SSLError too: a plain-HTTP client, a refused certificate, a timeout
                log.debug("tls_handshake_failed", client=_client(client_address), error=str(exc))
                return
            conn.settimeout(None)  # then as a plain connection: the handler's own timeout, if any
            super().finish_request(conn, client_address)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        client = _client(client_address)
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
            log.debug("http_client_gone", client=client, error=type(exc).__name__)
        else:
            log.error("http_request_failed", client=client, error=f"{type(exc).__name__}: {exc}")


def _client(address: Any) -> str:
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else "?"


class _Guarded(BaseHTTPRequestHandler):
    """Every method and path passes the server's basic-auth check before it is dispatched."""

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        guard = getattr(self.server, "guard", None)
        if guard is None or guard.authorized(self.headers.get("Authorization")):
            return True
        body = b"401 Unauthorized\n"
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="promcast"')
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return False  # answered: handle_one_request dispatches nothing


def _handler(render: Render, readiness: Readiness, health: Readiness) -> type[BaseHTTPRequestHandler]:
    class Handler(_Guarded):
        server_version = "promcast"
        sys_version = ""

        def _send(self, code: int, body: bytes, ctype: str, compress: bool = False) -> None:
            if compress:
                body = gzip.compress(body, compresslevel=6)
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            if compress:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                om = _wants_openmetrics(self.headers.get("Accept", ""))
                ctype = OPENMETRICS_CONTENT_TYPE if om else CONTENT_TYPE_LATEST
                self._send(200, render(om), ctype, _wants_gzip(self.headers.get("Accept-Encoding", "")))
            elif path == "/healthz":
                ok, problems = health()
                body = b"ok\n" if ok else "".join(f"{p}\n" for p in problems).encode()
                self._send(200 if ok else 503, body, "text/plain; charset=utf-8")
            elif path == "/readyz":
                ok, problems = readiness()
                body = json.dumps({"ready": ok, "problems": problems}).encode() + b"\n"
                self._send(200 if ok else 503, body, "application/json")
            elif path == "/":
                links = b'<a href="/metrics">/metrics</a> <a href="/healthz">/healthz</a> <a href="/readyz">/readyz</a>'
                self._send(200, b"<html><body>promcast " + links + b"</body></html>\n", "text/html")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        do_HEAD = do_GET

        def _refuse(self) -> None:
            self.send_response(405)
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

        def log_message(self, format: str, *args: object) -> None:  # scrapes are not worth a log line
            return

    return Handler


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        render: Render,
        readiness: Readiness,
        health: Readiness = _healthy,
        web_config_file: Path | None = None,
    ) -> None:
        guard = WebGuard(web_config_file) if web_config_file is not None else None  # a bad file: ConfigError
        try:
            self._httpd = _Server((host, port), _handler(render, readiness, health))
        except OSError as exc:  # a busy or unknown address is a setting to fix, not a crash to restart
            raise ConfigError(
                f"invalid settings:\n  listen: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        self._httpd.guard = guard
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="http", daemon=True)

    @property
    def scheme(self) -> str:
        return "https" if self._httpd.guard is not None and self._httpd.guard.tls else "http"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
