"""The end-to-end stack: a real Prometheus with backfilled history, scraping a real `promcast run` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from promcast.forecaster.data import load_csv
from promcast.forecaster.synthetic import diurnal

from .http import fetch, wait_until
from .prometheus_server import PrometheusServer, backfill, free_port, require_prometheus, write_openmetrics

__all__ = ["DAYS", "INTERVAL", "MAX_AGE_CYCLES", "SHARED_DATA", "TARGET", "Stack", "history", "running_stack"]

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DAYS = 3.5
INTERVAL = 2.0  # seconds between cycles; the step stays one minute
MAX_AGE_CYCLES = 3


def history(end: pd.Timestamp) -> tuple[np.ndarray, str]:
    """Minutes of Alibaba's cluster CPU trace (30 s averaged to 1 min), or a synthetic one without the data."""
    n = int(DAYS * 1440)
    path = SHARED_DATA / "alibaba2018_cluster_cpu_30s.csv"
    if path.exists():
        values = load_csv(path).resample("1min").mean().interpolate().to_numpy()[-n:]
        return values, "alibaba2018_cluster_cpu_30s"
    # A fixed index: the same values whatever the hour the tests start at.
    return diurnal(n, "1min", seed=0).to_numpy(), "synthetic diurnal (../shared/data absent)"


class LiveExporter:
    """The metric's exporter, live: serves each series' continuation of the backfilled history (the day before,
    a minute at a time, shifted to start at the last backfilled value), so that the daemon reads real samples
    after the backfill ends, as in production. Prometheus scrapes it in its own job with honor_labels and without
    a job label, so that the live samples continue the backfilled series (same label set)."""

    def __init__(self, end: pd.Timestamp, series: list[tuple[dict[str, str], np.ndarray]]) -> None:
        self.end, self.series = end, series
        handler = self._handler()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def page(self) -> bytes:
        minutes = int((pd.Timestamp.now(tz="UTC") - self.end) / pd.Timedelta(minutes=1))
        lines = ["# TYPE workload_cpu gauge"]
        for labels, values in self.series:
            # The day before, shifted to join the backfill's last value: no jump where the live part starts.
            day = len(values) - 1 - 1440
            value = values[(day + max(minutes, 0)) % len(values)] - values[day] + values[-1]
            text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines.append(f"workload_cpu{{{text}}} {float(value)!r}")
        return ("\n".join(lines) + "\n").encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.page()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> LiveExporter:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Stack:
    prometheus: PrometheusServer
    daemon: subprocess.Popen[str]
    url: str
    model_dir: Path
    config: Path
    log: Path

    def read_config(self) -> dict[str, Any]:
        return dict(json.loads(self.config.read_text()))


# The stack's one target; tests that need another model extend it: {**TARGET, "hparams": {...}}.
TARGET: dict[str, Any] = {
    "name": "cpu",
    "query": "workload_cpu",
    "step_seconds": 60,
    "interval_seconds": INTERVAL,
    "history": "P3D",
    "drop_labels": ["pod"],
    "epochs": 3,
    # The stack's tests compare what serves with the target's own first model: no pretrained model first (and no
    # own model trained behind it, swapped in mid-test); tests/test_pretrained_daemon.py covers that start.
    "first_model": "train",
}


def _config(prom_url: str, port: int, tmp: Path, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "prometheus": {"url": prom_url, "timeout_seconds": 2, "retries": 0, "max_points_per_request": 1000},
        "targets": [TARGET],
        "ready_max_age_steps": MAX_AGE_CYCLES,
        "listen": f"127.0.0.1:{port}",
        "model_dir": str(tmp / "models"),
        "model_poll_seconds": 1,
        "log_format": "json",
        **extra,
    }


@contextmanager
def running_stack(tmp: Path, values: np.ndarray | None = None, **extra: Any) -> Iterator[Stack]:
    """Backfill two series of `workload_cpu` (instances a and b), continue them live from an exporter, start
    Prometheus and `promcast run`, and wait until the daemon is ready. ``values`` replaces `history()`'s minutes
    (the last one lands a minute before now); ``extra`` adds or replaces top-level settings."""
    require_prometheus()
    end = pd.Timestamp.now(tz="UTC").floor("1min") - pd.Timedelta(minutes=1)
    if values is None:
        values, _ = history(end)
    ts = pd.date_range(end=end, periods=len(values), freq="1min")
    om = tmp / "history.om"
    series = [({"instance": "a", "pod": "p-1"}, values), ({"instance": "b", "pod": "p-2"}, 0.5 * values + 10.0)]
    write_openmetrics(om, [("workload_cpu", labels, ts, v) for labels, v in series])
    backfill(om, tmp / "tsdb")
    port = free_port()
    exporter = LiveExporter(end, series).__enter__()
    live = {
        "job_name": "workload",
        "honor_labels": True,
        "static_configs": [{"targets": [exporter.address]}],
        "metric_relabel_configs": [{"action": "labeldrop", "regex": "job"}],  # the backfill's label set exactly
    }
    prom = PrometheusServer(
        tmp / "prom", tsdb_dir=tmp / "tsdb", scrape_targets=[f"127.0.0.1:{port}"], extra_scrape_configs=[live]
    ).start()
    # The backfill ends a minute ago: wait for the live samples, or the series lag past max_lag at the next minute.
    prom.wait_for("count_over_time(workload_cpu[30s])", timeout=60)
    config = tmp / "promcast.yaml"
    config.write_text(json.dumps(_config(prom.url, port, tmp, extra)))
    log_path = tmp / "daemon.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finally below
    cmd = [sys.executable, "-m", "promcast", "run", "--config", str(config)]
    proc = subprocess.Popen(cmd, stderr=log, text=True, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is not None or _ok(url + "/readyz"), timeout=300, every=0.5)
        assert proc.poll() is None, log_path.read_text()[-3000:]
        yield Stack(prom, proc, url, tmp / "models", config, log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        prom.stop()
        exporter.__exit__()
        log.close()


def _ok(url: str) -> bool:
    try:
        return fetch(url)[0] == 200
    except OSError:
        return False
