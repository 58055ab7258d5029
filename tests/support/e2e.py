"""The end-to-end stack: a real Prometheus with backfilled history, scraping a real `promcast run` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.data import load_csv
from forecaster.synthetic import diurnal

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
    """Backfill two series of `workload_cpu` (instances a and b), start Prometheus and `promcast run`,
    and wait until the daemon is ready. ``values`` replaces `history()`'s minutes (the last one lands a minute
    before now); ``extra`` adds or replaces top-level settings."""
    require_prometheus()
    end = pd.Timestamp.now(tz="UTC").floor("1min") - pd.Timedelta(minutes=1)
    if values is None:
        values, _ = history(end)
    ts = pd.date_range(end=end, periods=len(values), freq="1min")
    om = tmp / "history.om"
    write_openmetrics(
        om,
        [
            ("workload_cpu", {"instance": "a", "pod": "p-1"}, ts, values),
            ("workload_cpu", {"instance": "b", "pod": "p-2"}, ts, 0.5 * values + 10.0),
        ],
    )
    backfill(om, tmp / "tsdb")
    port = free_port()
    prom = PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb", scrape_targets=[f"127.0.0.1:{port}"]).start()
    config = tmp / "promcast.yaml"
    config.write_text(json.dumps(_config(prom.url, port, tmp, extra)))
    log_path = tmp / "daemon.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finally below
    cmd = [sys.executable, "-m", "daemon", "run", "--config", str(config)]
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
        log.close()


def _ok(url: str) -> bool:
    try:
        return fetch(url)[0] == 200
    except OSError:
        return False
