"""The pretrained model in the daemon: an empty model store forecasts from the first cycle with it, the
target's own model is trained in the background and promoted only past the pretrained champion, ``model:
pretrained`` serves it for good, and an install without torch serves it and refuses to train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings, load_settings
from promcast.daemon.sources import make_source
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource, demo_target
from promcast.forecaster import load_pretrained

from .support.http import fetch, samples, wait_until
from .support.prometheus_server import PrometheusServer, backfill, require_prometheus, write_openmetrics

NOTORCH = Path(__file__).parent / "support" / "notorch"  # its sitecustomize makes `import torch` fail


def test_an_empty_store_forecasts_on_the_first_cycle_with_the_pretrained_model(tmp_path) -> None:
    target = demo_target()  # the demo's target: window 288, horizon 12, step 60 s
    source = DemoSource(DemoSettings(series=3), target.step)
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path), source, [target])
    (result,) = daemon.run_once()
    assert result.ok, result.error
    store = ModelStore(tmp_path, "demo")
    assert result.version == store.current_version()
    assert store.versions() == [result.version]
    text = daemon.metrics.exposition().decode()
    ((labels, _),) = samples(text, "promcast_model_info")
    assert (labels["model"], labels["runtime"], labels["version"]) == ("pretrained", "numpy", result.version)
    assert len(samples(text, "promcast_forecast")) == 3 * 12
    assert daemon.readiness() == (True, [])
    # What it published is the pretrained model's forecast of the same window.
    model = load_pretrained()
    end = pd.Timestamp(result.end)
    history = source.fetch(target, end - (model.input_length - 1) * target.step, end)
    windows = np.stack([history[key].to_numpy() for key in result.keys])  # the daemon's batch, in its order
    np.testing.assert_allclose(daemon.metrics.snapshot()[0]["demo"].values, model.predict(windows), rtol=1e-9)


def test_a_target_the_pretrained_model_does_not_fit_trains_first(tmp_path) -> None:
    target = TargetSettings(
        name="demo", query=DEMO_QUERY, window=24, history=timedelta(days=1), epochs=1, hparams={"hidden": 8}
    )
    source = DemoSource(DemoSettings(), target.step)
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path), source, [target])
    (result,) = daemon.run_once()
    assert result.ok, result.error
    assert daemon.metrics.snapshot()[1]["demo"].model == "mlp"  # its own, trained first: the window is 24


def test_model_pretrained_serves_it_for_good_and_never_trains(tmp_path, capsys) -> None:
    target = TargetSettings(name="demo", query=DEMO_QUERY, model="pretrained", history=timedelta(days=1))
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path, source="demo", targets=[target])
    daemon = Daemon(settings, make_source(settings), settings.targets)
    (result,) = daemon.run_once()
    assert result.ok
    assert result.version == "pretrained-" + load_pretrained().meta["weights_sha256"][:12]
    assert daemon.metrics.snapshot()[1]["demo"].model == "pretrained"
    assert not (tmp_path / "demo").exists()  # the store plays no part
    assert daemon.retrain("demo") == -2
    assert daemon.registry.get_sample_value("promcast_retrains_total", {"target": "demo", "reason": "cron"}) == 0
    config = tmp_path / "promcast.yaml"
    config.write_text(json.dumps(settings.model_dump(mode="json")))
    from promcast.daemon.cli import main

    assert main(["train", "--target", "demo", "--config", str(config)]) == 0
    assert "nothing to train for demo: it serves the pretrained model" in capsys.readouterr().out
    with pytest.raises(ValueError, match="model 'pretrained' reads window=288"):
        TargetSettings(name="x", query="q", model="pretrained", window=48)


def test_the_own_model_trains_in_the_background_against_the_pretrained_champion(tmp_path) -> None:
    target = TargetSettings(name="demo", query=DEMO_QUERY, history=timedelta(days=2), epochs=2)
    demo = DemoSettings(series=2, speed=60)
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path, source="demo", demo=demo, targets=[target])
    daemon = Daemon(settings, make_source(settings), settings.targets, speed=60, model_poll_seconds=0.5)
    store = ModelStore(tmp_path, "demo")
    daemon.start()
    try:
        assert daemon.server is not None
        url = f"http://127.0.0.1:{daemon.server.port}"
        wait_until(lambda: samples(fetch(url + "/metrics")[1], "promcast_forecast"), timeout=30)
        (pretrained,) = store.versions()
        ((info, _),) = samples(fetch(url + "/metrics")[1], "promcast_model_info")
        assert (info["model"], info["version"]) == ("pretrained", pretrained)
        assert fetch(url + "/readyz")[0] == 200
        report = wait_until(store.latest_decision, timeout=240)  # the background retrain's decision
        first = samples(fetch(url + "/metrics")[1], "promcast_retrains_total")
        assert ({"target": "demo", "reason": "first"}, 1.0) in first
        assert report["champion_version"] == pretrained
        assert report["scores"]["champion"] is not None
        assert report["trigger"] == "first"  # the daemon's own: never counted again as manual
        assert report["scored_on"]["champion"]["fit"] == "as trained"  # never refit: it never saw this target
        # What serves is what the gate decided: the own model if it beat the pretrained one, else the pretrained.
        want = ("mlp", report["version"]) if report["decision"] == "promote" else ("pretrained", pretrained)

        def served() -> bool:
            ((labels, _),) = samples(fetch(url + "/metrics")[1], "promcast_model_info")
            return (labels["model"], labels["version"]) == want

        assert wait_until(served, timeout=30)
        daemon.reload_models()  # what the poll does: the daemon's own "first" run is never counted as manual
        counts = samples(fetch(url + "/metrics")[1], "promcast_retrains_total")
        assert ({"target": "demo", "reason": "manual"}, 0.0) in counts
    finally:
        daemon.shutdown()


# ---- an install without torch, against a real Prometheus -------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory):
    """Ten hours of a 1-minute metric, two series: more than the pretrained model's 300 points."""
    require_prometheus()
    tmp = tmp_path_factory.mktemp("notorch")
    last = pd.Timestamp(int(time.time()) // 60 * 60, unit="s", tz="UTC")
    ts = pd.date_range(end=last, periods=600, freq="1min")
    t = np.arange(600)
    rows = [("load", {"s": s}, ts, level + 10 * np.sin(2 * np.pi * t / 120)) for s, level in (("a", 50), ("b", 80))]
    write_openmetrics(tmp / "load.om", rows)
    backfill(tmp / "load.om", tmp / "tsdb")
    with PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb") as prom:
        yield prom


def test_an_install_without_torch_serves_the_pretrained_model_and_refuses_to_train(prometheus, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(NOTORCH)}
    cut = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert cut.returncode == 1
    assert "No module named 'torch'" in cut.stderr
    config = tmp_path / "promcast.yaml"
    config.write_text(
        json.dumps(
            {
                "prometheus": {"url": prometheus.url},
                "listen": "127.0.0.1:0",
                "model_dir": str(tmp_path / "models"),
                "log_format": "json",
                "targets": [{"name": "cpu", "query": "load", "history": "PT10H"}],
            }
        )
    )
    log = tmp_path / "daemon.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "promcast", "run", "--config", str(config)], env=env, stderr=err, text=True
        )
    try:

        def started() -> str | None:
            if proc.poll() is not None:
                raise AssertionError(f"the daemon exited with {proc.returncode}: {log.read_text()[-2000:]}")
            return next((json.loads(x)["listen"] for x in log.read_text().splitlines() if '"started"' in x), None)

        url = wait_until(started, timeout=60)
        got = wait_until(lambda: samples(fetch(url + "/metrics")[1], "promcast_forecast"), timeout=60)
        assert {s["s"] for s, _ in got} == {"a", "b"}
        assert len(got) == 24
        ((info, _),) = samples(fetch(url + "/metrics")[1], "promcast_model_info")
        assert (info["model"], info["runtime"]) == ("pretrained", "numpy")
        assert fetch(url + "/readyz")[0] == 200
        lines = [json.loads(line) for line in wait_until(lambda: log.read_text().splitlines(), timeout=10)]
        (unavailable,) = [x for x in lines if x["event"] == "own_model_unavailable"]
        assert "pip install 'promcast[train]'" in unavailable["reason"]
        assert not [x for x in lines if x["event"] == "training_first_model"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert load_settings(config).targets[0].name == "cpu"
    done = subprocess.run(
        [sys.executable, "-m", "promcast", "train", "--target", "cpu", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "promcast train needs torch, which this install lacks" in done.stderr
    assert "pip install 'promcast[train]'" in done.stderr
