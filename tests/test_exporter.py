"""An exporter's manners, over a real HTTP scrape: build info, process and platform metrics, gzip and OpenMetrics
when the scraper asks for them, and scrapes that never trigger work."""

from __future__ import annotations

import gzip
import platform
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from promcast.daemon.app import Daemon
from promcast.daemon.build import build_info
from promcast.daemon.http.families import TargetForecast
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.http.server import HttpServer
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster

from .support.http import samples

REPO = Path(__file__).resolve().parents[1]


def _get(url: str, **headers: str) -> tuple[dict[str, str], bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
        return dict(resp.headers), resp.read()


@pytest.fixture
def served() -> Iterator[str]:
    metrics = Metrics(CollectorRegistry(), ["web"], clock=lambda: 100.0)
    metrics.register_process(build_info())
    keys = ((("instance", "a"),), (("instance", "b"),))
    values = np.arange(24, dtype=float).reshape(2, 12)
    metrics.publish("web", TargetForecast(100.0, 60.0, keys, values, 300.0, {0.8: (values - 1, values + 1)}))
    metrics.errors.labels("web", "query").inc()
    server = HttpServer("127.0.0.1", 0, metrics.exposition, lambda: (True, []))
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/metrics"
    finally:
        server.stop()


def test_the_page_carries_build_process_and_platform_metrics(served: str) -> None:
    headers, body = _get(served)
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert "Content-Encoding" not in headers
    text = body.decode()
    ((labels, value),) = samples(text, "promcast_build_info")
    build = build_info()
    assert value == 1
    assert labels == {"version": build.version, "revision": build.revision, "python": build.python}
    assert samples(text, "process_resident_memory_bytes")[0][1] > 0
    assert samples(text, "python_info")[0][0]["implementation"] == platform.python_implementation()
    assert len(samples(text, "promcast_forecast")) == 24


def test_gzip_when_the_scraper_asks_for_it(served: str) -> None:
    headers, body = _get(served, **{"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(body).decode()
    assert len(samples(text, "promcast_forecast")) == 24
    plain_headers, plain = _get(served, **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain_headers
    assert len(body) < len(plain)


def test_openmetrics_when_the_scraper_asks_for_it(served: str) -> None:
    accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4"
    headers, body = _get(served, Accept=accept)
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert text.count("# EOF") == 1
    families = {f.name: f for f in parse_openmetrics(text)}  # the strict parser: a malformed page raises
    assert len(families["promcast_forecast"].samples) == 24
    assert len(families["promcast_forecast_upper"].samples) == 24
    errors = {s.labels["stage"]: s.value for s in families["promcast_errors"].samples if s.name.endswith("_total")}
    assert errors["query"] == 1


def test_version_flag_names_the_build() -> None:
    proc = subprocess.run([sys.executable, "-m", "promcast", "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    build = build_info()
    assert proc.stdout.strip() == f"promcast {build.version} (revision {build.revision}, python {build.python})"
    if (REPO / ".git").exists():  # a checkout names its commit; an installed copy says "unknown"
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert build.revision != "unknown"
        assert head.stdout.startswith(build.revision)


class Counting:
    """A real DemoSource that counts the reads made of it."""

    def __init__(self, inner: DemoSource) -> None:
        self.inner, self.reads = inner, 0

    def now(self) -> datetime:
        return self.inner.now()

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        self.reads += 1
        return self.inner.fetch(target, start, end)


def test_scrapes_never_trigger_work(tmp_path: Path) -> None:
    target = TargetSettings(name="demo", query=DEMO_QUERY, step_seconds=60, window=24, history=timedelta(days=1))
    f = Forecaster("naive", window=24, step="60s").fit(np.sin(np.arange(300) / 5.0) + 2.0)
    ModelStore(tmp_path / "models", "demo").publish(f)
    source = Counting(DemoSource(DemoSettings(series=2), target.step))
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models"), source, [target])
    (result,) = daemon.run_once()
    assert result.ok
    served = daemon.holders["demo"].get()
    assert served is not None
    predicted = []
    original = served.forecaster.predict
    served.forecaster.predict = lambda w: predicted.append(len(w)) or original(w)  # type: ignore[method-assign]
    reads = source.reads
    server = HttpServer("127.0.0.1", 0, daemon.metrics.exposition, daemon.readiness)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        for _ in range(10):
            page = _get(base + "/metrics")[1].decode()
            assert len(samples(page, "promcast_forecast")) == 24
            assert _get(base + "/readyz")[1].startswith(b'{"ready": true')
    finally:
        server.stop()
    assert source.reads == reads, "a scrape read the source or ran the model"
    assert predicted == [], "a scrape read the source or ran the model"
