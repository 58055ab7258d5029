"""The labels a forecast carries when its source has no ``instance`` or ``job`` (an aggregated query), and
README's PromQL recipes run as written against a real Prometheus that scrapes the daemon with honor_labels."""

from __future__ import annotations

import re
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

from .support.prometheus_server import PrometheusServer, backfill, require_prometheus, write_openmetrics

pytestmark = pytest.mark.prometheus

README = Path(__file__).resolve().parents[1] / "README.md"
QUERY = "sum by (service) (rate(http_requests_total[5m]))"  # README's example target, aggregated: no instance
SERVICES = {"checkout", "cart"}


def recipes() -> list[str]:
    section = README.read_text().split("## PromQL recipes", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```promql\n(.*?)```", section, re.S)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    require_prometheus()
    tmp = tmp_path_factory.mktemp("labels")
    # The backfill ends a minute before the current one: Prometheus refuses stamped samples at or before the
    # end of its newest block, and the forecasts are stamped with the current minute.
    last = pd.Timestamp(int(time.time()) // 60 * 60 - 60, unit="s", tz="UTC")
    ts = pd.date_range(end=last, periods=240, freq="1min")
    rows = [
        ("http_requests_total", {"service": name}, ts, np.cumsum(np.full(240, 60.0 * rps)))
        for name, rps in (("checkout", 5.0), ("cart", 2.0))
    ]
    write_openmetrics(tmp / "requests.om", rows)
    backfill(tmp / "requests.om", tmp / "tsdb")
    target = TargetSettings(name="api_rps", query=QUERY, window=48, history="PT3H", interval_seconds=2)
    f = Forecaster("naive", window=48, horizon=12, step="60s").fit(diurnal(400, "1min", seed=1))
    ModelStore(tmp / "models", "api_rps").publish(f)
    prom = PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb", job_name="promcast")
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp / "models", prometheus=PrometheusSettings(url=prom.url))
    d = Daemon(settings, PrometheusSource(settings.prometheus), [target])
    d.start()
    assert d.server is not None
    prom.scrape_targets = [f"127.0.0.1:{d.server.port}"]
    write_config = prom.write_config

    def honored() -> Path:
        path = write_config()
        path.write_text(
            path.read_text().replace('"job_name": "promcast",', '"job_name": "promcast", "honor_labels": true,')
        )
        return path

    prom.write_config = honored  # type: ignore[method-assign]
    try:
        with prom:
            prom.wait_for('promcast_forecast{target="api_rps"}', timeout=60)
            yield prom, f"127.0.0.1:{d.server.port}"
    finally:
        d.shutdown()


def test_a_forecast_of_an_aggregated_query_gets_promcasts_instance_and_job(stack) -> None:
    prom, address = stack
    got = prom.query('promcast_forecast{target="api_rps", h="1"}')
    assert {r["metric"]["service"] for r in got} == SERVICES
    assert all(r["metric"]["instance"] == address and r["metric"]["job"] == "promcast" for r in got)
    assert not any(k.startswith("exported_") for r in got for k in r["metric"])


def test_every_readme_recipe_answers_per_service(stack) -> None:
    prom, _ = stack
    found = recipes()
    assert len(found) == 4, found
    overlay, peak, capacity, stale = found
    # The overlay 12 steps back: evaluated 12 minutes ahead, it shows the forecasts made now.
    got = prom.query(overlay, eval_time=time.time() + 12 * 60)
    assert {r["metric"]["service"] for r in got} == SERVICES
    peaks = {r["metric"]["service"]: float(r["value"][1]) for r in prom.query(peak)}
    assert set(peaks) == SERVICES
    assert all(r["metric"]["target"] == "api_rps" for r in prom.query(peak))
    # The capacity to provision: the larger of the forecast peak and the actual rate, per service.
    actual = {r["metric"]["service"]: float(r["value"][1]) for r in prom.query(QUERY)}
    capacity_got = {r["metric"]["service"]: float(r["value"][1]) for r in prom.query(capacity)}
    assert capacity_got == {s: pytest.approx(max(peaks[s], actual[s]), rel=1e-6) for s in SERVICES}
    assert prom.query(stale) == []  # a healthy daemon: nothing stale
