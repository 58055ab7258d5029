"""Readiness per target, against a real Prometheus and over real HTTP: a target with nothing to forecast (a per-pod
query whose pods live minutes, a query that matches nothing) is reported with its reason but does not hold /readyz
back unless it is required; a query Prometheus cannot parse stops the start-up with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import PrometheusSettings, Settings, TargetSettings
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.forecaster import Forecaster
from promcast.forecaster.synthetic import diurnal

from .support.http import fetch, samples
from .support.prometheus_server import PrometheusServer, backfill, require_prometheus, write_openmetrics

pytestmark = pytest.mark.prometheus

W = 48
MINUTE = pd.Timedelta(minutes=1)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> PrometheusServer:
    """Two hours of `load`, and `pod_load` of a pod that has lived 5 minutes (never a window of W points)."""
    require_prometheus()
    tmp = tmp_path_factory.mktemp("ready")
    last = pd.Timestamp(int(time.time()) // 60 * 60, unit="s", tz="UTC")
    ts = pd.date_range(end=last, periods=120, freq=MINUTE)
    values = 50 + 10 * np.sin(np.arange(120) / 9.0)
    rows = [("load", {"s": "a"}, ts, values), ("pod_load", {"pod": "p-1"}, ts[-5:], values[-5:])]
    write_openmetrics(tmp / "load.om", rows)
    backfill(tmp / "load.om", tmp / "tsdb")
    with PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb") as prom:
        yield prom


def _target(name: str, query: str, **extra: object) -> TargetSettings:
    return TargetSettings(name=name, query=query, step_seconds=60, window=W, history="PT2H", model="naive", **extra)


def _daemon(tmp: Path, url: str, targets: list[TargetSettings]) -> Daemon:
    for t in targets:
        f = Forecaster("naive", window=W, horizon=12, step="60s").fit(diurnal(W + 300, "1min", seed=1))
        ModelStore(tmp, t.name).publish(f)
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp, prometheus=PrometheusSettings(url=url))
    return Daemon(settings, PrometheusSource(settings.prometheus), targets)


def _ready(d: Daemon) -> tuple[int, dict[str, object]]:
    d.start()
    try:
        d.run_once()
        code, body = fetch(f"http://127.0.0.1:{d.server.port}/readyz")  # type: ignore[union-attr]
        states = {
            s["target"]: s["state"]
            for s, v in samples(fetch(f"http://127.0.0.1:{d.server.port}/metrics")[1], "promcast_target_state")  # type: ignore[union-attr]
            if v == 1
        }
        return code, {"body": json.loads(body), "states": states}
    finally:
        d.shutdown()


def test_targets_with_nothing_to_forecast_are_reported_but_do_not_hold_readiness_back(prometheus, tmp_path) -> None:
    targets = [_target("api", "load"), _target("pods", "pod_load"), _target("none", 'load{s="nowhere"}')]
    code, got = _ready(_daemon(tmp_path, prometheus.url, targets))
    assert code == 200, got
    assert got["states"] == {"api": "forecasting", "pods": "no_data", "none": "no_data"}
    lines = got["body"]["problems"]  # type: ignore[index]
    assert [line.split(":")[0] for line in lines] == ["pods", "none"]
    assert "need 48 points, got 5" in lines[0], lines
    assert "matched no series" in lines[1], lines


def test_a_required_target_with_nothing_to_forecast_holds_readiness_back(prometheus, tmp_path) -> None:
    targets = [_target("api", "load"), _target("pods", "pod_load", required=True)]
    code, got = _ready(_daemon(tmp_path, prometheus.url, targets))
    assert code == 503, got
    assert got["body"]["problems"] == [  # type: ignore[index]
        "pods: no usable series: 1 series returned, none usable (for example: need 48 points, got 5)"
    ]


def test_a_query_prometheus_cannot_parse_exits_2_at_start_up_naming_the_target(prometheus, tmp_path) -> None:
    cmd = [sys.executable, "-m", "promcast", "run", "--prometheus-url", prometheus.url, "--listen", "127.0.0.1:0"]
    cmd += ["--model-dir", str(tmp_path), "--target", "ok=load", "--target", "bad=rate(load[5m]"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "targets.bad.query" in done.stderr
    assert "parse error" in done.stderr
