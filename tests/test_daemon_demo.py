"""The daemon on its embedded demo source, in process: gauges, health, readiness, vanishing series, errors."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.daemon.types import SeriesKey, SourceUnavailable

from .support.deploy import require_tool
from .support.http import fetch, samples, wait_until

SPEED = 600.0  # ten simulated minutes per real second: one 60 s step every 0.1 s


def _target() -> TargetSettings:
    return TargetSettings(
        name="demo",
        query=DEMO_QUERY,
        step_seconds=60,
        window=24,
        history=timedelta(days=1),
        epochs=2,
        model="gru",
        hparams={"hidden": 8},
    )


class Switchable:
    """A real DemoSource whose answers a test can cut off, or thin out to fewer series."""

    def __init__(self, inner: DemoSource) -> None:
        self.inner, self.down, self.keep = inner, False, None

    def now(self) -> datetime:
        return self.inner.now()

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        if self.down:
            raise SourceUnavailable("switched off by the test")
        data = self.inner.fetch(target, start, end)
        return {k: v for i, (k, v) in enumerate(sorted(data.items())) if self.keep is None or i < self.keep}


@pytest.fixture
def running(tmp_path) -> Iterator[tuple[Daemon, Switchable, str]]:
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models", ready_max_age_steps=5)
    demo = DemoSettings(series=3, speed=SPEED, workload="bursty")
    target = _target()
    source = Switchable(DemoSource(demo, target.step))
    daemon = Daemon(settings, source, [target], speed=SPEED, model_poll_seconds=0.5)
    daemon.start()
    assert daemon.server is not None
    url = f"http://127.0.0.1:{daemon.server.port}"
    try:
        wait_until(lambda: samples(fetch(url + "/metrics")[1], "promcast_forecast"), timeout=60)
        yield daemon, source, url
    finally:
        daemon.shutdown()


def test_forecasts_are_published_for_every_series_and_step(running) -> None:
    daemon, _, url = running
    text = fetch(url + "/metrics")[1]
    got = samples(text, "promcast_forecast")
    assert {(s["series"], s["h"]) for s, _ in got} == {(f"s{i}", str(h)) for i in range(3) for h in range(1, 13)}
    assert all(s["target"] == "demo" for s, _ in got)
    (info,) = samples(text, "promcast_model_info")
    assert info[0]["model"] == "gru"
    assert info[0]["version"] == daemon.holders["demo"].get().version
    assert info[0]["runtime"] == "torch"  # the GRU has no NumPy forward
    assert samples(text, "promcast_series") == [({"target": "demo"}, 3.0)]


def test_published_values_equal_the_forecasters_own_prediction(running) -> None:
    daemon, source, url = running
    daemon.scheduler.pause()  # freeze publishing so the scrape and the recomputation see the same cycle
    text = fetch(url + "/metrics")[1]
    (origin,) = samples(text, "promcast_forecast_origin_timestamp_seconds")
    end = pd.Timestamp(origin[1], unit="s", tz="UTC").to_pydatetime()
    target = daemon.targets[0]
    data = source.fetch(target, end - (target.input_length + 6) * target.step, end)
    model = daemon.holders["demo"].get().forecaster
    keys = sorted(data)  # the daemon's batch order, so that the batched inference is identical
    wants = model.predict(np.stack([data[k].to_numpy()[-target.input_length :] for k in keys]))
    for key, want in zip(keys, wants, strict=True):
        got = {int(s["h"]): v for s, v in samples(text, "promcast_forecast") if s["series"] == dict(key)["series"]}
        np.testing.assert_allclose([got[h] for h in range(1, 13)], want, rtol=1e-12)


def test_health_and_readiness(running) -> None:
    _, _, url = running
    assert fetch(url + "/healthz") == (200, "ok\n")
    code, body = fetch(url + "/readyz")
    assert code == 200
    assert '"ready": true' in body
    assert fetch(url + "/nope")[0] == 404


def test_only_get_and_head_are_served(running) -> None:
    _, _, url = running
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert fetch(url + "/metrics", method)[0] == 405
    assert fetch(url + "/metrics", "HEAD") == (200, "")


def test_a_vanished_series_loses_its_gauges_and_counts_an_error(running) -> None:
    _, source, url = running
    source.keep = 2

    def gone() -> bool:
        text = fetch(url + "/metrics")[1]
        return {s["series"] for s, _ in samples(text, "promcast_forecast")} == {"s0", "s1"}

    wait_until(gone, timeout=10)
    errors = samples(fetch(url + "/metrics")[1], "promcast_errors_total")
    assert dict((s["stage"], v) for s, v in errors)["vanished"] >= 1


def test_source_outage_counts_errors_then_turns_unready_then_recovers(running) -> None:
    _, source, url = running
    source.down = True
    wait_until(lambda: fetch(url + "/readyz")[0] == 503, timeout=10)
    text = fetch(url + "/metrics")[1]
    assert not samples(text, "promcast_forecast"), "stale forecasts must not be served"
    assert dict((s["stage"], v) for s, v in samples(text, "promcast_errors_total"))["query"] >= 1
    assert fetch(url + "/healthz")[0] == 200
    source.down = False
    wait_until(lambda: fetch(url + "/readyz")[0] == 200, timeout=10)
    assert samples(fetch(url + "/metrics")[1], "promcast_forecast")


def test_exposition_passes_promtool(running) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus (scripts/test does)")
    _, _, url = running
    text = fetch(url + "/metrics")[1]
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "", proc.stdout + proc.stderr
    assert proc.stderr.strip() == "", proc.stdout + proc.stderr
