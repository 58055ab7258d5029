"""Gaps, outages and lagging samples, read from a real Prometheus: every filled point is counted, an outage never
blinds the daemon, and each series is forecast from its own last real sample."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from promcast.daemon.app import Daemon
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import PrometheusSettings, Settings, TargetSettings
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.forecaster import Forecaster
from promcast.forecaster.synthetic import diurnal

from .support.prometheus_server import PrometheusServer, backfill, require_prometheus, write_openmetrics

pytestmark = pytest.mark.prometheus

W = 48
MINUTE = pd.Timedelta(minutes=1)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> tuple[PrometheusServer, pd.Timestamp]:
    """Two hours of a 1-minute metric, four series: steady; an outage of 20 minutes (no samples, as when
    Prometheus or the exporter was down); a blip of 4 minutes; and one whose samples stopped 3 minutes ago."""
    require_prometheus()
    tmp = tmp_path_factory.mktemp("gaps")
    last = pd.Timestamp(int(time.time()) // 60 * 60, unit="s", tz="UTC")
    ts = pd.date_range(end=last, periods=120, freq=MINUTE)
    values = 50 + 10 * np.sin(np.arange(120) / 9.0)
    keep = {
        "steady": np.ones(120, bool),
        "outage": ~((ts > last - 31 * MINUTE) & (ts <= last - 11 * MINUTE)),
        "blip": ~((ts > last - 21 * MINUTE) & (ts <= last - 17 * MINUTE)),
        "late": ts <= last - 3 * MINUTE,
    }
    rows = [("load", {"s": name}, ts[k], values[k]) for name, k in keep.items()]
    write_openmetrics(tmp / "load.om", rows)
    backfill(tmp / "load.om", tmp / "tsdb")
    with PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb") as prom:
        yield prom, last


def daemon(tmp: Path, url: str, **target: object) -> Daemon:
    t = TargetSettings(
        name="load", query="load", step_seconds=60, window=W, history="PT2H", model="naive", **target
    )  # the model it serves: the windows it builds are the naive's W points
    f = Forecaster("naive", window=W, horizon=12, step="60s").fit(diurnal(W + 300, "1min", seed=1))
    ModelStore(tmp, "load").publish(f)
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp, prometheus=PrometheusSettings(url=url))
    return Daemon(settings, PrometheusSource(settings.prometheus), [t])


def test_outage_blip_and_lag_are_forecast_with_every_filled_point_counted(prometheus, tmp_path) -> None:
    prom, last = prometheus
    d = daemon(tmp_path, prom.url, max_lag=3)  # "late" lags 3 steps: forecast from its own origin
    (result,) = d.run_once()
    assert result.ok, result.error
    names = [dict(k)["s"] for k in result.keys]
    assert names == ["blip", "late", "outage", "steady"]  # the outage does not blind the daemon
    fc = d.metrics.snapshot()[0]["load"]
    origins = dict(zip(names, fc.origins, strict=True))
    # Each series starts at its own last real sample: the 5-minute lookback's repeats are not samples.
    assert origins["late"] == (last - 3 * MINUTE).timestamp()
    assert origins["steady"] == origins["outage"] == origins["blip"] == last.timestamp()
    # Filled: the outage's 20 points and the blip's 4, of 4 windows of W points; Prometheus's lookback had
    # answered 5 of each with the last value repeated.
    gauge = lambda name: d.registry.get_sample_value(name, {"target": "load"})  # noqa: E731
    assert gauge("promcast_input_imputed_ratio") == pytest.approx(24 / (4 * W))
    assert gauge("promcast_input_gap_series") == 1
    assert gauge("promcast_input_lagging_series") == 1
    # The stamped overlay family carries each series' origin as its sample time.
    stamps = {
        s.labels["s"]: s.timestamp
        for fam in text_string_to_metric_families(d.metrics.exposition().decode())
        for s in fam.samples
        if s.name == "promcast_forecast_at_origin" and s.labels["h"] == "1"
    }
    assert stamps == {n: pytest.approx(o) for n, o in origins.items()}


def test_a_bridged_outage_widens_that_series_interval_only(prometheus, tmp_path) -> None:
    prom, _ = prometheus
    bands = {}
    for factor in (1.0, 2.0):
        d = daemon(tmp_path / str(factor), prom.url, gap_interval_factor=factor, max_lag=3)
        (result,) = d.run_once()
        fc = d.metrics.snapshot()[0]["load"]
        lo, hi = fc.bounds[0.95]
        bands[factor] = {dict(k)["s"]: (hi[i] - fc.values[i], fc.values[i] - lo[i]) for i, k in enumerate(result.keys)}
    for name in ("steady", "blip", "late"):
        np.testing.assert_allclose(bands[2.0][name], bands[1.0][name])
    np.testing.assert_allclose(bands[2.0]["outage"], 2 * np.asarray(bands[1.0]["outage"]))
    assert min(bands[1.0]["outage"][0]) > 0
