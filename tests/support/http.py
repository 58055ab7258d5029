"""Small HTTP helpers for tests: GET a URL and parse a /metrics exposition."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from promcast.daemon.app import Daemon
from promcast.daemon.http.server import HttpServer

__all__ = ["fetch", "samples", "scrape", "wait_until"]


def fetch(url: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of metric ``name`` (the sample name, e.g. promcast_errors_total) in an exposition."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out.append((dict(s.labels), float(s.value)))
    return out


def wait_until(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def scrape(daemon: Daemon) -> str:
    """/metrics of an in-process daemon, over a real HTTP request to its own server on a free port."""
    server = HttpServer("127.0.0.1", 0, daemon.metrics.exposition, daemon.readiness)
    server.start()
    try:
        return fetch(f"http://127.0.0.1:{server.port}/metrics")[1]
    finally:
        server.stop()
