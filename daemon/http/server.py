"""HTTP endpoints: /metrics renders, /healthz says cycles are being attempted, /readyz says forecasts are fresh.

Only GET and HEAD exist; nothing here changes state or triggers work.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE

from promcast.daemon.logs import get_logger
from promcast.daemon.settings import ConfigError

__all__ = ["HttpServer"]

log = get_logger("promcast.http")

Readiness = Callable[[], tuple[bool, list[str]]]  # (ok, the reasons it is not); also the shape of health


def _healthy() -> tuple[bool, list[str]]:
    return True, []


Render = Callable[[bool], bytes]  # the /metrics page; True asks for OpenMetrics


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

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        client = f"{client_address[0]}:{client_address[1]}" if isinstance(client_address, tuple) else "?"
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("http_client_gone", client=client, error=type(exc).__name__)
        else:
            log.error("http_request_failed", client=client, error=f"{type(exc).__name__}: {exc}")


def _handler(render: Render, readiness: Readiness, health: Readiness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
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
        self, host: str, port: int, render: Render, readiness: Readiness, health: Readiness = _healthy
    ) -> None:
        try:
            self._httpd = _Server((host, port), _handler(render, readiness, health))
        except OSError as exc:  # a busy or unknown address is a setting to fix, not a crash to restart
            raise ConfigError(
                f"invalid settings:\n  listen: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
