"""Series that drop_labels sums together are counted per target and logged once per change, against a real
Prometheus: the daemon's own cycles read it, its /metrics page is scraped over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from promcast.daemon.app import Daemon
from promcast.daemon.http.server import HttpServer
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import PrometheusSettings, Settings, TargetSettings
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.forecaster import Forecaster

from .support.http import fetch, samples
from .support.prometheus_server import PrometheusServer, backfill, require_prometheus, write_openmetrics

pytestmark = pytest.mark.prometheus

STEP = 60
HOURS = 6


class AtClock(PrometheusSource):
    """The real source, read at a moment the test sets: the cycles walk through the backfilled history."""

    moment = datetime(2000, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, int, int]]:
    """Six hours of load{instance, pod}: instance a runs pods p1 and p2 (p2 stops halfway), b runs p3."""
    binaries = require_prometheus()
    tmp = tmp_path_factory.mktemp("merged")
    last = int(time.time()) // STEP * STEP - STEP  # never in the future
    ts = np.arange(last - HOURS * 3600, last + 1, STEP, dtype=np.int64)
    stop = last - HOURS * 3600 // 2
    wave = np.sin(np.arange(len(ts)) / 30.0)
    series = [
        ("load", {"instance": "a", "pod": "p1"}, ts, 10.0 + wave),
        ("load", {"instance": "a", "pod": "p2"}, ts[ts <= stop], 5.0 + wave[ts <= stop]),
        ("load", {"instance": "b", "pod": "p3"}, ts, 20.0 + wave),
    ]
    write_openmetrics(tmp / "load.om", series)
    backfill(tmp / "load.om", tmp / "tsdb", promtool=binaries.promtool)
    with PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb", binaries=binaries) as prom:
        yield prom, stop, last


def _daemon(tmp: Path, prom: PrometheusServer) -> tuple[Daemon, AtClock]:
    targets = [
        TargetSettings(name="load", query="load", window=24, history=timedelta(days=1), drop_labels=["pod"]),
        TargetSettings(name="plain", query="load", window=24, history=timedelta(days=1)),
    ]
    model = Forecaster("naive", window=24, step=f"{STEP}s").fit(np.sin(np.arange(300) / 5.0) + 10.0)
    for t in targets:
        ModelStore(tmp / "models", t.name).publish(model)
    source = AtClock(PrometheusSettings(url=prom.url, retries=0))
    return Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp / "models"), source, targets), source


def _merged(url: str) -> dict[str, float]:
    return {labels["target"]: v for labels, v in samples(fetch(url)[1], "promcast_merged_series")}


def test_series_summed_by_drop_labels_are_counted_and_logged_once_per_change(
    history: tuple[PrometheusServer, int, int], tmp_path: Path
) -> None:
    prom, stop, last = history
    daemon, source = _daemon(tmp_path, prom)
    server = HttpServer("127.0.0.1", 0, daemon.metrics.exposition, daemon.readiness)
    server.start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        with capture_logs() as logs:
            for minute in range(3):  # p2 still runs beside p1: one full read, then short ones
                source.moment = _at(stop - 1800 + minute * STEP)
                assert all(r.ok for r in daemon.run_once())
            assert _merged(url) == {"load": 1.0, "plain": 0.0}
            counts = {labels["target"]: v for labels, v in samples(fetch(url)[1], "promcast_series")}
            assert counts == {"load": 2.0, "plain": 3.0}  # a's two pods are one series once pod is dropped
            for minute in range(2):  # hours after p2 stopped: nothing collides any more
                source.moment = _at(last - STEP + minute * STEP)
                assert all(r.ok for r in daemon.run_once())
            assert _merged(url) == {"load": 0.0, "plain": 0.0}
    finally:
        server.stop()
    merged = [e for e in logs if e["event"] == "series_merged"]
    assert [(e["log_level"], e["target"], e["merged"]) for e in merged] == [("warning", "load", 1), ("info", "load", 0)]
    assert merged[0]["example"] == {"instance": "a"}
    assert merged[0]["members"] == 2
