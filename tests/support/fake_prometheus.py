"""A stand-in for Prometheus's HTTP API: sine waves on the asked grid, and whatever fault a test puts in ``answer``."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

__all__ = ["FakePrometheus", "sine_matrix"]


def sine_matrix(query: dict[str, list[str]], series: int = 1) -> bytes:
    """A query_range answer: ``series`` sine waves of metric ``load`` on the grid the query asks for."""
    start, end, step = (float(query[k][0]) for k in ("start", "end", "step"))
    grid = [start + i * step for i in range(int((end - start) / step) + 1)]
    result = [
        {
            "metric": {"__name__": "load", "series": f"s{i}"},
            "values": [[t, repr(10 + i + 3 * math.sin(t / 7.0))] for t in grid],
        }
        for i in range(series)
    ]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()


class FakePrometheus:
    """Serves ``answer`` (override it) on 127.0.0.1; records the Authorization headers it saw."""

    def __init__(self) -> None:
        self.mode, self.auth_seen = "ok", set[str]()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        return 200, sine_matrix(query)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.auth_seen.add(self.headers.get("Authorization", ""))
                code, body = fake.answer(parse_qs(urlparse(self.path).query))
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up on a slow answer
                    pass

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler
