"""End to end against a real Prometheus: backfilled history, a daemon process, scrapes, an outage and recovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daemon.settings import PrometheusSettings, TargetSettings
from daemon.source import PrometheusSource
from forecaster import Forecaster
from forecaster.data import load_csv
from forecaster.synthetic import diurnal

from .conftest import SHARED_DATA
from .support.http import fetch, samples, wait_until
from .support.prometheus_server import PrometheusServer, backfill, free_port, require_prometheus, write_openmetrics

pytestmark = pytest.mark.prometheus

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
    return diurnal(n, "1min", seed=0, end=end).to_numpy(), "synthetic diurnal (../shared/data absent)"


@dataclass
class Stack:
    prometheus: PrometheusServer
    daemon: subprocess.Popen[str]
    url: str
    model_dir: Path
    config: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    require_prometheus()
    tmp = tmp_path_factory.mktemp("e2e")
    end = pd.Timestamp.now(tz="UTC").floor("1min") - pd.Timedelta(minutes=1)
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
    config.write_text(
        json.dumps(
            {
                "prometheus": {"url": prom.url, "timeout_seconds": 2, "retries": 0, "max_points_per_request": 1000},
                "targets": [
                    {
                        "name": "cpu",
                        "query": "workload_cpu",
                        "step_seconds": 60,
                        "interval_seconds": INTERVAL,
                        "history": "P3D",
                        "drop_labels": ["pod"],
                        "epochs": 3,
                    }
                ],
                "ready_max_age_steps": MAX_AGE_CYCLES,
                "listen": f"127.0.0.1:{port}",
                "model_dir": str(tmp / "models"),
                "log_format": "json",
            }
        )
    )
    log = open(tmp / "daemon.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--config", str(config)], stderr=log, text=True, env=dict(os.environ)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is not None or fetch_ok(url + "/readyz"), timeout=240, every=0.5)
        assert proc.poll() is None, (tmp / "daemon.log").read_text()[-3000:]
        yield Stack(prom, proc, url, tmp / "models", config)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        prom.stop()
        log.close()


def fetch_ok(url: str) -> bool:
    try:
        return fetch(url)[0] == 200
    except OSError:
        return False


def test_forecasts_for_every_series_and_step(stack: Stack) -> None:
    got = samples(fetch(stack.url + "/metrics")[1], "promcast_forecast")
    keys = {(s["instance"], s["h"]) for s, _ in got}
    assert keys == {(i, str(h)) for i in ("a", "b") for h in range(1, 13)}
    assert all(s["target"] == "cpu" and "pod" not in s for s, _ in got), "dropped labels must not appear"


def test_values_equal_the_forecasters_prediction_on_the_same_window(stack: Stack) -> None:
    text = fetch(stack.url + "/metrics")[1]
    (origin,) = samples(text, "promcast_forecast_origin_timestamp_seconds")
    end = pd.Timestamp(origin[1], unit="s", tz="UTC").to_pydatetime()
    model = Forecaster.load(stack.model_dir / "cpu" / "current")
    target = TargetSettings(name="cpu", query="workload_cpu", step_seconds=60, drop_labels=["pod"])
    source = PrometheusSource(PrometheusSettings(url=stack.prometheus.url))
    data = source.fetch(target, end - 80 * target.step, end)
    keys = sorted(data)  # the daemon's batch order, so that the batched inference is identical
    wants = model.predict(np.stack([data[k].to_numpy()[-model.window :] for k in keys]))
    for key, want in zip(keys, wants, strict=True):
        inst = dict(key)["instance"]
        got = {int(s["h"]): v for s, v in samples(text, "promcast_forecast") if s["instance"] == inst}
        np.testing.assert_allclose([got[h] for h in range(1, 13)], want, rtol=1e-12)


def test_prometheus_scraped_the_forecasts(stack: Stack) -> None:
    result = stack.prometheus.wait_for('promcast_forecast{target="cpu"}', timeout=30)
    # Without honor_labels, Prometheus keeps its own instance label and renames the series' one.
    got = {(r["metric"]["exported_instance"], r["metric"]["h"]) for r in result}
    assert got == {(i, str(h)) for i in ("a", "b") for h in range(1, 13)}
    assert stack.prometheus.query('max by (target) (promcast_forecast{target="cpu"})')


def test_exposition_passes_promtool(stack: Stack) -> None:
    text = fetch(stack.url + "/metrics")[1]
    promtool = require_prometheus().promtool
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr


def test_outage_counts_errors_turns_unready_and_recovers(stack: Stack) -> None:
    assert fetch(stack.url + "/readyz")[0] == 200
    stack.prometheus.stop()
    try:
        wait_until(lambda: fetch(stack.url + "/readyz")[0] == 503, timeout=INTERVAL * (MAX_AGE_CYCLES + 5))
        text = fetch(stack.url + "/metrics")[1]
        assert not samples(text, "promcast_forecast"), "a stale forecast must not be served"
        errors = {s["stage"]: v for s, v in samples(text, "promcast_errors_total") if s["target"] == "cpu"}
        assert errors["query"] >= 1
        assert stack.daemon.poll() is None and fetch(stack.url + "/healthz")[0] == 200
    finally:
        stack.prometheus.start()
    # Back within one cycle (plus Prometheus's own start-up and the query).
    wait_until(lambda: fetch(stack.url + "/readyz")[0] == 200, timeout=INTERVAL * 2 + 10)
    assert samples(fetch(stack.url + "/metrics")[1], "promcast_forecast")
