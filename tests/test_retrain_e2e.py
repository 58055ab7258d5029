"""Retraining against the real test Prometheus while `promcast run` serves: promote, keep, refuse, roll back.

One stack serves the module. Its history is the same with or without ../shared and at any hour: a daily cycle plus
an hourly one that "repeat the last value" cannot follow, so the tiny challenger beats a naive champion by about
half its MAE (and never by 90 %). Every test makes the store state it needs; none relies on another having run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.cli import main
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import load_settings
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.forecaster import Forecaster
from promcast.forecaster.synthetic import diurnal

from .support.e2e import DAYS, INTERVAL, Stack, running_stack
from .support.e2e import TARGET as STACK_TARGET
from .support.http import fetch, samples, wait_until

pytestmark = pytest.mark.prometheus

POLL = 1.0  # the stack's model_poll_seconds
# The stack's target with a tiny network, so that each training run takes seconds.
TARGET = {**STACK_TARGET, "hparams": {"hidden": 32, "members": 1}}


def fixed_history() -> np.ndarray:
    n = int(DAYS * 1440)
    return diurnal(n, "1min", seed=0).to_numpy() + 8.0 * np.sin(2 * np.pi * np.arange(n) / 60)


def seed_naive_champion(model_dir: Path, window: int = 288) -> str:
    f = Forecaster("naive", window=window, horizon=12, step="60s").fit(diurnal(window + 200, "1min", seed=1))
    return ModelStore(model_dir, "cpu").publish(f)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("retrain")
    seed_naive_champion(tmp / "models")
    with running_stack(tmp, values=fixed_history(), targets=[TARGET]) as s:
        yield s


def serve_naive(stack: Stack) -> str:
    """Publish a fresh naive version and wait until the daemon serves it."""
    version = seed_naive_champion(stack.model_dir)
    wait_until(lambda: served_version(stack) == version, timeout=POLL + 3)
    return version


def promcast(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = ["nice", "-n", "5", sys.executable, "-m", "promcast", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ), check=False)


def metrics(stack: Stack) -> str:
    return fetch(stack.url + "/metrics")[1]


def served_version(stack: Stack) -> str:
    ((labels, _),) = samples(metrics(stack), "promcast_model_info")
    return labels["version"]


def swaps(stack: Stack, result: str) -> float:
    return {s["result"]: v for s, v in samples(metrics(stack), "promcast_model_swaps_total")}[result]


def last_success(stack: Stack) -> float:
    return samples(metrics(stack), "promcast_last_success_timestamp_seconds")[0][1]


def store(stack: Stack) -> ModelStore:
    return ModelStore(stack.model_dir, "cpu")


class CycleWatch:
    """Samples promcast_last_success_timestamp_seconds in the background and reports the widest gap."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.seen, self._stop = stack, set[float](), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.seen.add(last_success(self.stack))

    def __enter__(self) -> CycleWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def widest_gap(self) -> float:
        return float(np.diff(sorted(self.seen)).max())


def test_train_promotes_and_the_daemon_swaps_without_missing_a_cycle(stack: Stack) -> None:
    before = serve_naive(stack)
    accepted = swaps(stack, "accepted")
    with CycleWatch(stack) as watch:
        t0 = time.monotonic()
        proc = promcast("train", "--target", "cpu", "--config", str(stack.config))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.startswith("promoted cpu version "), proc.stdout
        new = store(stack).current_version()
        assert new is not None
        assert new != before
        assert new in proc.stdout
        trained = time.monotonic()
        wait_until(lambda: served_version(stack) == new, timeout=POLL + 2)
        print(f"train {trained - t0:.1f}s, swap seen {time.monotonic() - trained:.2f}s after: {proc.stdout.strip()}")
        time.sleep(2 * INTERVAL)  # a couple of cycles on the new model
    assert len(watch.seen) >= 3
    # A missed cycle would leave a gap of two intervals; late-but-not-missed cycles stay well under it.
    assert watch.widest_gap() < 1.75 * INTERVAL, sorted(watch.seen)
    assert swaps(stack, "accepted") == accepted + 1
    report = store(stack).decision_of(new)
    assert report is not None
    assert report["decision"] == "promote"
    assert report["champion_version"] == before
    assert report["scores"]["challenger"]["mae"] < report["scores"]["champion"]["mae"]
    gauges = {s["role"]: v for s, v in samples(metrics(stack), "promcast_model_holdout_mae")}
    assert gauges["champion"] == pytest.approx(report["scores"]["challenger"]["mae"])
    assert gauges["challenger"] == pytest.approx(report["scores"]["challenger"]["mae"])


def test_a_challenger_that_cannot_beat_the_margin_is_kept_out(stack: Stack) -> None:
    current = serve_naive(stack)
    proc = promcast("train", "--target", "cpu", "--config", str(stack.config), "--margin", "0.9")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"kept cpu version {current}:"), proc.stdout
    report = store(stack).latest_decision()
    assert report is not None
    assert report["decision"] == "keep"
    assert report["margin"] == 0.9
    assert "<= margin 90.00%" in report["reason"]
    assert store(stack).current_version() == current
    assert served_version(stack) == current


def test_a_challenger_no_better_than_naive_is_kept_out(stack: Stack, tmp_path: Path) -> None:
    current = store(stack).current_version()
    config: dict[str, Any] = stack.read_config()
    config["targets"][0] |= {"model": "naive", "epochs": None, "hparams": {}}
    worse = tmp_path / "naive.yaml"
    worse.write_text(json.dumps(config))
    proc = promcast("train", "--target", "cpu", "--config", str(worse))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("kept cpu"), proc.stdout + proc.stderr
    report = store(stack).latest_decision()
    assert report is not None
    assert report["decision"] == "keep"
    assert "does not beat naive" in report["reason"]
    assert store(stack).current_version() == current


def _truncate_weights(path: Path) -> None:
    weights = path / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])


def _tamper_meta(path: Path) -> None:
    meta = json.loads((path / "meta.json").read_text())
    meta["window"] = 300  # disagrees with the weights' own header
    (path / "meta.json").write_text(json.dumps(meta))


def _wrong_window(path: Path) -> None:
    shutil.rmtree(path)
    Forecaster("ar", window=48, horizon=12, step="60s").fit(diurnal(400, "1min", seed=2)).save(path)


@pytest.mark.parametrize("spoil", [_truncate_weights, _tamper_meta, _wrong_window], ids=lambda f: f.__name__[1:])
def test_a_broken_current_is_refused_and_the_old_model_keeps_serving(stack: Stack, spoil) -> None:
    st = store(stack)
    good = st.current_version()
    assert good is not None
    assert served_version(stack) == good
    rejected = swaps(stack, "rejected")
    bad = st.new_version()
    shutil.copytree(st.versions_dir / good, st.versions_dir / bad)
    spoil(st.versions_dir / bad)
    try:
        st.promote(bad)
        wait_until(lambda: swaps(stack, "rejected") == rejected + 1, timeout=POLL + 3)
        stamp = last_success(stack)
        wait_until(lambda: last_success(stack) > stamp, timeout=2 * INTERVAL + 2)  # still forecasting
        assert served_version(stack) == good
        assert swaps(stack, "rejected") == rejected + 1, "a refused version is not retried on every poll"
    finally:
        st.promote(good)
        shutil.rmtree(st.versions_dir / bad)


def test_models_list_and_rollback_return_metrics_to_the_previous_version(stack: Stack, capsys) -> None:
    st = store(stack)
    serve_naive(stack)
    previous, current = serve_naive(stack), serve_naive(stack)
    assert st.current_version() == current
    assert st.previous_version() == previous
    args = ["--target", "cpu", "--config", str(stack.config)]
    assert main(["models", "list", *args]) == 0
    listing = capsys.readouterr().out
    marked = [line for line in listing.splitlines() if line.startswith("*")]
    assert len(marked) == 1
    assert current in marked[0]
    assert previous in listing
    assert main(["models", "rollback", *args]) == 0
    assert f"{current} -> {previous}" in capsys.readouterr().out
    wait_until(lambda: served_version(stack) == previous, timeout=POLL + 2)
    assert main(["models", "rollback", *args, "--to", current]) == 0
    wait_until(lambda: served_version(stack) == current, timeout=POLL + 2)


def test_retrain_cron_runs_train_in_a_child_process_and_the_daemon_swaps(stack: Stack, tmp_path: Path) -> None:
    config = stack.read_config()
    config["targets"][0]["retrain_cron"] = "* * * * * *"  # every second; max_instances=1 runs one at a time
    config |= {"listen": "127.0.0.1:0", "model_dir": str(tmp_path / "models")}
    path = tmp_path / "cron.yaml"
    path.write_text(json.dumps(config))
    seed = seed_naive_champion(tmp_path / "models")
    settings = load_settings(path)
    daemon = Daemon(settings, PrometheusSource(settings.prometheus), settings.targets)
    daemon.start()
    try:
        wait_until(lambda: daemon.holders["cpu"].get() is not None, timeout=30)
        assert daemon.holders["cpu"].get().version == seed  # type: ignore[union-attr]
        served = wait_until(lambda: _served_other_than(daemon, seed), timeout=120, every=0.5)
        assert ModelStore(tmp_path / "models", "cpu").decision_of(served) is not None
    finally:
        daemon.request_stop()
        daemon.shutdown()


def _served_other_than(daemon: Daemon, version: str) -> str | None:
    served = daemon.holders["cpu"].get()
    return served.version if served is not None and served.version != version else None
