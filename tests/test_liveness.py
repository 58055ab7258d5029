"""Liveness: the first training has a timeout (`train_timeout_seconds`), and /healthz answers 503 with the reason
when a target's cycles stop being attempted, while a first training within its timeout stays healthy.

The daemon runs in process against a small Prometheus stand-in in a thread that can hold every request
unanswered (the PrometheusSource's timeout is a minute), as a wedged network or server would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.health import MIN_IDLE_SECONDS
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import PrometheusSettings, Settings, TargetSettings
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.forecaster import Forecaster

from .support.fake_prometheus import FakePrometheus, sine_matrix
from .support.http import fetch, wait_until

TRAIN_TIMEOUT = 15.0  # seconds: longer than MIN_IDLE_SECONDS plus the test's own margin


class HangingPrometheus(FakePrometheus):
    """Answers query_range with a sine wave on the asked grid; in mode "hang" it holds each request until
    ``release`` is set, then answers 503; in mode "down" it answers 503 at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def close(self) -> None:
        self.mode = "down"
        self.release.set()
        super().close()

    def answer(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        if self.mode == "hang":
            self.release.wait(120)
        if self.mode != "ok":
            return 503, b'{"status":"error","error":"held"}'
        return 200, sine_matrix(query)


def _answer(url: str, code: int, text: str = "") -> str:
    """The body of ``url`` once it answers ``code`` with ``text`` in its body."""
    return str(wait_until(lambda: (r := fetch(url))[0] == code and text in r[1] and r[1], timeout=TRAIN_TIMEOUT + 15))


def _target() -> TargetSettings:
    return TargetSettings(
        name="load", query="load", step_seconds=1, window=8, history=timedelta(seconds=60), model="naive"
    )


@pytest.fixture
def prometheus() -> Iterator[HangingPrometheus]:
    server = HangingPrometheus()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def start(prometheus: HangingPrometheus, tmp_path: Path) -> Iterator[object]:
    """Start a daemon on a 1-second step against ``prometheus``; returns its URL."""
    started: list[tuple[Daemon, PrometheusSource]] = []

    def run() -> str:
        prom = PrometheusSettings(url=prometheus.url, timeout_seconds=60, retries=0, backoff_seconds=0)
        settings = Settings(
            listen="127.0.0.1:0", model_dir=tmp_path / "models", prometheus=prom, train_timeout_seconds=TRAIN_TIMEOUT
        )
        source = PrometheusSource(settings.prometheus)
        daemon = Daemon(settings, source, [_target()], model_poll_seconds=60)
        started.append((daemon, source))
        daemon.start()
        assert daemon.server is not None
        return f"http://127.0.0.1:{daemon.server.port}"

    try:
        yield run
    finally:
        prometheus.mode = "down"
        prometheus.release.set()  # a held request returns, so that shutdown does not wait for its timeout
        for daemon, source in started:
            daemon.shutdown()
            source.close()


def test_healthz_fails_with_the_reason_when_cycles_stop_and_recovers_when_they_resume(
    prometheus: HangingPrometheus, start, tmp_path: Path
) -> None:
    index = pd.date_range("2026-01-01", periods=60, freq="1s", tz="UTC")
    model = Forecaster("naive", window=8).fit(pd.Series(np.sin(np.arange(60.0)), index=index), step="1s")
    ModelStore(tmp_path / "models", "load").publish(model)
    url = start()
    wait_until(lambda: fetch(url + "/readyz")[0] == 200, timeout=30)
    assert fetch(url + "/healthz") == (200, "ok\n")

    prometheus.mode = "hang"  # the cycle in flight waits on its read; no other cycle can start
    body = _answer(url + "/healthz", 503)
    assert body.startswith("load: no cycle started for "), body
    assert f"(limit {MIN_IDLE_SECONDS:.0f}s)" in body, body  # 3 one-second intervals, raised to the floor

    prometheus.mode = "ok"
    prometheus.release.set()
    wait_until(lambda: fetch(url + "/healthz")[0] == 200, timeout=30)


def test_a_first_training_is_healthy_within_its_timeout_and_unhealthy_past_it(
    prometheus: HangingPrometheus, start
) -> None:
    prometheus.mode = "hang"  # the first training's history read never gets an answer
    url = start()
    _answer(url + "/readyz", 503, "load: no model: training the first one (")
    time.sleep(MIN_IDLE_SECONDS + 1)  # idle past the limit of an ordinary cycle, still within the timeout
    assert fetch(url + "/healthz") == (200, "ok\n")
    body = _answer(url + "/healthz", 503)
    assert "past train_timeout_seconds (15 s)" in body, body


def test_a_first_training_past_train_timeout_seconds_is_stopped_and_named(tmp_path: Path) -> None:
    # The demo's first model trains for minutes here; the timeout stops its child after 2 s.
    env = {**os.environ, "PROMCAST_TRAIN_TIMEOUT_SECONDS": "2", "PROMCAST_LOG_FORMAT": "json"}
    cmd = [
        sys.executable,
        "-m",
        "promcast",
        "demo",
        "--once",
        "--first-model",
        "train",
        "--model-dir",
        str(tmp_path / "m"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    (result,) = json.loads(proc.stdout)
    assert result["error"].startswith("no model: cannot train the first model: TrainingFailed: "), result
    assert "ran past train_timeout_seconds (2 s) and was stopped" in result["error"], result
    store = ModelStore(tmp_path / "m" / "demo-diurnal-60s", "demo")
    assert store.current_version() is None
    assert store.versions() == []
    assert not [p for p in (tmp_path / "m").rglob(".*") if p.name != ".lock"]
