"""End to end against a real Prometheus: backfilled history, a daemon process, scrapes, an outage and recovery."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from promcast.daemon.settings import PrometheusSettings, TargetSettings
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.forecaster import Forecaster
from promcast.forecaster.numpy_runtime import load_frozen

from .support.e2e import INTERVAL, MAX_AGE_CYCLES, Stack, running_stack
from .support.http import fetch, samples, wait_until
from .support.prometheus_server import require_prometheus

pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e")) as s:
        yield s


def test_forecasts_for_every_series_and_step(stack: Stack) -> None:
    got = samples(fetch(stack.url + "/metrics")[1], "promcast_forecast")
    keys = {(s["instance"], s["h"]) for s, _ in got}
    assert keys == {(i, str(h)) for i in ("a", "b") for h in range(1, 13)}
    assert all(s["target"] == "cpu" and "pod" not in s for s, _ in got), "dropped labels must not appear"


def test_the_daemon_serves_the_default_model_without_loading_torch(stack: Stack) -> None:
    ((labels, _),) = samples(fetch(stack.url + "/metrics")[1], "promcast_model_info")
    assert (labels["model"], labels["runtime"], labels["serves"]) == ("mlp", "numpy", "model")
    # The real process: first-start training ran in a child, and no torch library is mapped here.
    maps = Path(f"/proc/{stack.daemon.pid}/maps").read_text()
    assert "libtorch" not in maps
    assert "libc10" not in maps


def test_values_equal_the_forecasters_prediction_on_the_same_window(stack: Stack) -> None:
    text = fetch(stack.url + "/metrics")[1]
    (origin,) = samples(text, "promcast_forecast_origin_timestamp_seconds")
    end = pd.Timestamp(origin[1], unit="s", tz="UTC").to_pydatetime()
    path = stack.model_dir / "cpu" / "current"
    model = load_frozen(path)  # what the daemon serves (NumPy for the default model); test_frozen.py ties it to torch
    assert model.serves == "model"  # the network's forecast: naive's would make the comparison below hollow
    target = TargetSettings(name="cpu", query="workload_cpu", step_seconds=60, drop_labels=["pod"])
    source = PrometheusSource(PrometheusSettings(url=stack.prometheus.url))
    data = source.fetch(target, end - (model.input_length + 20) * target.step, end)
    keys = sorted(data)  # the daemon's batch order, so that the batched inference is identical
    with threadpool_limits(1):  # the daemon's BLAS threads (torch_threads): another count sums in another order
        wants = model.predict(np.stack([data[k].to_numpy()[-model.input_length :] for k in keys]))
    for key, want in zip(keys, wants, strict=True):
        inst = dict(key)["instance"]
        got = {int(s["h"]): v for s, v in samples(text, "promcast_forecast") if s["instance"] == inst}
        np.testing.assert_allclose([got[h] for h in range(1, 13)], want, rtol=1e-12)
    torch_model = Forecaster.load(path)
    np.testing.assert_allclose(torch_model.predict(model.last_window(data[keys[0]])[None]), wants[:1], rtol=1e-5)


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
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr


def test_outage_counts_errors_turns_unready_and_recovers(stack: Stack) -> None:
    assert fetch(stack.url + "/readyz")[0] == 200
    stack.prometheus.stop()
    try:
        wait_until(lambda: fetch(stack.url + "/readyz")[0] == 503, timeout=INTERVAL * (MAX_AGE_CYCLES + 5))
        text = fetch(stack.url + "/metrics")[1]
        assert not samples(text, "promcast_forecast"), "a stale forecast must not be served"
        errors = {s["stage"]: v for s, v in samples(text, "promcast_errors_total") if s["target"] == "cpu"}
        assert errors["query"] >= 1
        assert stack.daemon.poll() is None
        assert fetch(stack.url + "/healthz")[0] == 200
    finally:
        stack.prometheus.start()
    # Back within one cycle (plus Prometheus's own start-up and the query).
    wait_until(lambda: fetch(stack.url + "/readyz")[0] == 200, timeout=INTERVAL * 2 + 10)
    assert samples(fetch(stack.url + "/metrics")[1], "promcast_forecast")
