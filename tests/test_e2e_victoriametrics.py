"""End to end against a real VictoriaMetrics: history through its import API, `promcast train` and the daemon's
cycle through the victoriametrics source, and the forecast writer's samples read back ahead of now.

The history is a function of the minute, so the test knows every input value the daemon reads (and can add the
minutes that pass while it runs): a daily cycle, an hourly one that naive cannot follow, and fixed noise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs
from threadpoolctl import threadpool_limits

from promcast.daemon.app import Daemon
from promcast.daemon.http.families import TargetForecast
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import ConfigError, PrometheusSettings, Settings, TargetSettings, load_settings
from promcast.daemon.settings.sinks import PushSettings
from promcast.daemon.settings.sources import VictoriaMetricsSettings
from promcast.daemon.sinks.push import ForecastPusher
from promcast.daemon.sources import make_source
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.daemon.sources.victoriametrics import VictoriaMetricsSource
from promcast.forecaster import Forecaster
from promcast.forecaster.numpy_runtime import load_frozen
from promcast.forecaster.synthetic import diurnal

from .support.http import samples
from .support.localprom import free_port
from .support.localvm import VictoriaMetricsServer, require_victoriametrics

STEP = 60
HORIZON = 12
DAYS = 2
SCALE = {"a": (1.0, 0.0), "b": (1.0, 40.0)}  # instance -> (factor, offset) of the one shape
TARGET: dict[str, Any] = {
    "name": "cpu",
    "query": "workload_cpu",
    "step_seconds": STEP,
    "history": f"P{DAYS}D",
    "window": 96,
    "drop_labels": ["pod"],
    "epochs": 3,
    "hparams": {"hidden": 32, "members": 1},
}


def shape(minutes: np.ndarray) -> np.ndarray:
    """The value at each Unix minute: daily and hourly cycles, and noise fixed by the minute."""
    noise = np.modf(np.abs(np.sin(minutes * 12.9898) * 43758.5453))[0] * 2 - 1
    return 100 + 30 * np.sin(2 * np.pi * minutes / 1440) + 10 * np.sin(2 * np.pi * minutes / 12) + 0.2 * noise


def value(instance: str, seconds: np.ndarray) -> np.ndarray:
    factor, offset = SCALE[instance]
    return factor * shape(np.asarray(seconds) // 60) + offset


@dataclass
class Stack:
    vm: VictoriaMetricsServer
    config: Path
    model_dir: Path
    fed_to: int  # the last minute imported, in Unix seconds
    train: subprocess.CompletedProcess[str] | None = None  # the fixture's `promcast train`
    champion: str = ""  # the naive version it ran against

    def feed(self) -> None:
        """Import the minutes up to now that are not there yet: the live samples a scrape would add."""
        last = int(time.time()) // STEP * STEP
        if last > self.fed_to:
            minutes = np.arange(self.fed_to + STEP, last + STEP, STEP)
            labels = {"a": {"instance": "a", "pod": "p-1"}, "b": {"instance": "b", "pod": "p-2"}}
            self.vm.import_series([("workload_cpu", labels[i], minutes, value(i, minutes)) for i in SCALE])
            self.fed_to = last

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(self.config, **overrides)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    require_victoriametrics()
    tmp = tmp_path_factory.mktemp("vm")
    with VictoriaMetricsServer(tmp / "vm") as vm:
        start = int(time.time()) // STEP * STEP - DAYS * 86400 - 3600
        s = Stack(vm, tmp / "promcast.yaml", tmp / "models", start - STEP)
        s.feed()
        config = {
            "source": "victoriametrics",
            "prometheus": {"url": vm.url, "timeout_seconds": 5, "retries": 0},
            "targets": [TARGET],
            "model_dir": str(s.model_dir),
            "log_format": "json",
        }
        s.config.write_text(json.dumps(config))
        # A naive champion: the challenger trained on the hourly cycle must beat it to be promoted.
        naive = Forecaster("naive", window=96, horizon=HORIZON, step=f"{STEP}s").fit(diurnal(400, "1min", seed=1))
        s.champion = ModelStore(s.model_dir, "cpu").publish(naive)
        cmd = [sys.executable, "-m", "promcast", "train", "--target", "cpu", "--config", str(s.config)]
        s.train = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False)
        yield s


def cycle(settings: Settings, stack: Stack) -> tuple[Daemon, TargetForecast]:
    """One real cycle of a daemon on the victoriametrics source, on data up to now; the forecast it published."""
    daemon = Daemon(settings, make_source(settings), settings.targets)
    stack.feed()
    with threadpool_limits(1):
        (result,) = daemon.run_once()
    assert result.ok, result.error
    return daemon, daemon.metrics.snapshot()[0]["cpu"]


def test_train_against_victoriametrics_promotes_a_model(stack: Stack) -> None:
    assert stack.train is not None
    assert stack.train.returncode == 0, stack.train.stdout + stack.train.stderr
    assert stack.train.stdout.startswith("promoted cpu version "), stack.train.stdout
    store = ModelStore(stack.model_dir, "cpu")
    new = store.current_version()
    assert new is not None
    assert new != stack.champion
    report = store.decision_of(new)
    assert report is not None
    assert report["decision"] == "promote"
    assert report["scores"]["challenger"]["mae"] < report["scores"]["champion"]["mae"]


def test_a_cycle_publishes_the_models_forecast_of_the_imported_history(stack: Stack) -> None:
    daemon, fc = cycle(stack.settings(), stack)
    model = load_frozen(stack.model_dir / "cpu" / "current")
    assert model.serves == "model"  # the network's forecast: naive's would make the comparison hollow
    served = daemon.holders["cpu"].get()
    assert served is not None
    assert served.version == ModelStore(stack.model_dir, "cpu").current_version()
    assert sorted(dict(k)["instance"] for k in fc.keys) == ["a", "b"]  # pod dropped, one series per instance
    assert fc.origins is not None
    windows = []
    for key, origin in zip(fc.keys, fc.origins, strict=True):
        assert origin == stack.fed_to  # the last minute imported (the cycle's end, or the one before it)
        times = origin - STEP * np.arange(model.input_length - 1, -1, -1)
        windows.append(value(dict(key)["instance"], times))
    with threadpool_limits(1):
        want = model.predict(np.stack(windows))
    np.testing.assert_allclose(fc.values, want, rtol=1e-9)
    naive = np.stack(windows)[:, -1:]
    assert np.abs(fc.values - naive).max(axis=1).min() > 2.0, "the forecast is the last value repeated"
    text = daemon.metrics.exposition().decode()
    assert len(samples(text, "promcast_forecast")) == 2 * HORIZON


def _gauges(text: str, name: str) -> dict[tuple[str, ...], float]:
    out = {}
    for labels, v in samples(text, name):
        out[(labels["instance"], labels.get("level", ""), labels["h"])] = v
    return out


def test_the_writer_pushes_the_published_forecast_ahead_of_now(stack: Stack) -> None:
    pushed_at = time.time()
    daemon, fc = cycle(stack.settings(push={"url": stack.vm.import_url}), stack)
    assert fc.origins is not None
    text = daemon.metrics.exposition().decode()
    published = {
        "": _gauges(text, "promcast_forecast"),
        "lower": _gauges(text, "promcast_forecast_lower"),
        "upper": _gauges(text, "promcast_forecast_upper"),
    }
    assert published["lower"], "the cycle published bands"
    stack.vm.flush()  # searchable now rather than within the second
    lo, hi = float(fc.origins.min()) + STEP, float(fc.origins.max()) + HORIZON * STEP
    got = stack.vm.query_range('promcast_forecast_ahead{target="cpu"}', lo, hi, STEP)
    assert len(got) == 2 * (1 + 2 * len(fc.bounds)), [r["metric"] for r in got]
    origins = {dict(k)["instance"]: float(o) for k, o in zip(fc.keys, fc.origins, strict=True)}
    for series in got:
        labels = series["metric"]
        assert "h" not in labels
        assert "pod" not in labels
        inst, bound, level = labels["instance"], labels.get("bound", ""), labels.get("level", "")
        values = {int(t): float(v) for t, v in series["values"]}
        for h in range(1, HORIZON + 1):
            at = int(origins[inst]) + h * STEP
            assert at > pushed_at, "a forecast sample lies ahead of the push"
            # VictoriaMetrics keeps 13 significant digits of a value
            assert values[at] == pytest.approx(published[bound][(inst, level, str(h))], rel=1e-11), (labels, h)


def test_where_pushes_overlap_a_query_returns_the_newest_forecast(stack: Stack) -> None:
    target = TargetSettings(name="overlap", query="unused", step_seconds=STEP, horizon=HORIZON)
    metrics = Metrics(CollectorRegistry(), ["overlap"])
    pusher = ForecastPusher(PushSettings(url=stack.vm.import_url), metrics, [target])
    o = int(time.time()) // STEP * STEP + 3600  # an hour ahead: nothing else writes there
    key = (("instance", "x"),)

    def push(origin: int, base: float) -> None:
        values = base + np.arange(1, HORIZON + 1, dtype=float)[None, :]
        metrics.publish("overlap", TargetForecast(time.time(), origin, (key,), values, 600.0))
        assert pusher.push("overlap")

    push(o, 100.0)  # steps at o + 1..12 steps: 101..112
    push(o + STEP, 200.0)  # steps at o + 2..13 steps: 201..212, over the first cycle's last 11
    push(o + STEP, 300.0)  # the same origin again: not pushed a second time
    stack.vm.flush()
    (got,) = stack.vm.query_range('promcast_forecast_ahead{target="overlap"}', o + STEP, o + 13 * STEP, STEP)
    assert [float(v) for _, v in got["values"]] == [101.0, *range(201, 213)]


class SilentSink:
    """A port that accepts connections and never answers."""

    def __enter__(self) -> str:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/v1/import/prometheus"

    def __exit__(self, *_: object) -> None:
        self.sock.close()


@pytest.mark.parametrize("sink", ["refused", "silent"])
def test_a_failed_push_is_logged_and_counted_and_the_cycle_still_publishes(stack: Stack, sink: str) -> None:
    with SilentSink() as silent:
        url = silent if sink == "silent" else f"http://127.0.0.1:{free_port()}/api/v1/import/prometheus"
        with capture_logs() as logs:
            daemon, fc = cycle(stack.settings(push={"url": url, "timeout_seconds": 0.3}), stack)
    assert fc.values.shape == (2, HORIZON)
    errors = {s["stage"]: v for s, v in samples(daemon.metrics.exposition().decode(), "promcast_errors_total")}
    assert errors["push"] == 1
    assert sum(errors.values()) == 1, errors
    (line,) = [e for e in logs if e["event"] == "push_failed"]
    assert line["target"] == "cpu"
    assert line["series"] == 2
    assert ("Timeout" if sink == "silent" else "ConnectionError") in line["error"]


def test_the_victoriametrics_source_leaves_out_the_points_victoriametrics_repeats(stack: Stack) -> None:
    """For a step under a minute VictoriaMetrics answers the last 30 s with the point before: read as samples, those
    are repeats the plain Prometheus source takes for real values."""
    step = 15
    end = int(time.time()) // step * step
    times = np.arange(end - 40 * step, end + step, step)
    truth = dict(zip(times.tolist(), (times // step % 1000).astype(float).tolist(), strict=True))  # all distinct
    stack.vm.import_series([("fast_cpu", {"instance": "f"}, times, list(truth.values()))])
    target = TargetSettings(name="fast", query="fast_cpu", step_seconds=step)
    settings = PrometheusSettings(url=stack.vm.url, retries=0)
    start = end - 20 * step
    ((_, plain),) = PrometheusSource(settings).fetch(target, _dt(start), _dt(end)).items()
    assert any(truth[int(t.timestamp())] != v for t, v in plain.items()), "VictoriaMetrics repeated no point"
    before = time.time()
    vm = VictoriaMetricsSource(settings, VictoriaMetricsSettings())
    ((_, read),) = vm.fetch(target, _dt(start), _dt(end)).items()
    after = time.time()
    got = {int(t.timestamp()): v for t, v in read.items()}
    assert all(truth[t] == v for t, v in got.items()), "a repeated point was read as a sample"
    assert max(got) <= after - 30
    assert set(got) >= {t for t in truth if start <= t <= before - 30}


def test_at_a_step_of_a_minute_the_victoriametrics_source_reads_up_to_now(stack: Stack) -> None:
    """VictoriaMetrics repeats no point of a step of 1 min or more: the source reads the newest, 5 s old, too."""
    end = int(time.time()) - 5
    times = np.arange(end - 20 * STEP, end + 1, STEP)
    stack.vm.import_series([("minute_cpu", {"instance": "m"}, times, times % 997)])
    target = TargetSettings(name="minute", query="minute_cpu", step_seconds=STEP)
    vm = VictoriaMetricsSource(PrometheusSettings(url=stack.vm.url, retries=0), VictoriaMetricsSettings())
    ((_, read),) = vm.fetch(target, _dt(times[0]), _dt(end)).items()
    assert {int(t.timestamp()): v for t, v in read.items()} == dict(
        zip(times.tolist(), (times % 997).tolist(), strict=True)
    )


def test_at_a_step_under_a_minute_a_cycle_forecasts_what_victoriametrics_delays(stack: Stack, tmp_path) -> None:
    """The source reads 30 s behind now, 2 or 3 steps of 15 s: the series lags by that, not stopped (max_lag 1)."""
    step, w = 15, 8
    end = int(time.time()) // step * step
    times = np.arange(end - 60 * step, end + step, step)
    stack.vm.import_series([("quick_cpu", {"instance": "q"}, times, (times // step % 7).astype(float))])
    target = TargetSettings(name="quick", query="quick_cpu", step_seconds=step, window=w, model="naive")
    ModelStore(tmp_path, "quick").publish(Forecaster("naive", window=w, step="15s").fit(diurnal(w + 300, "15s")))
    settings = Settings(
        listen="127.0.0.1:0", model_dir=tmp_path, source="victoriametrics", targets=[target],
        prometheus=PrometheusSettings(url=stack.vm.url, retries=0),
    )  # fmt: skip
    (result,) = Daemon(settings, make_source(settings), [target]).run_once()
    assert result.ok, result.error
    assert [dict(k)["instance"] for k in result.keys] == ["q"]


def test_a_query_victoriametrics_cannot_parse_stops_the_start_up_naming_the_target(stack: Stack) -> None:
    """VictoriaMetrics answers a syntax error with 422, as any query error: at start-up it is a setting to fix."""
    from promcast.daemon.cli import _check_queries

    source = VictoriaMetricsSource(PrometheusSettings(url=stack.vm.url, retries=0), VictoriaMetricsSettings())
    good = TargetSettings(name="good", query="cpu", step_seconds=STEP)
    bad = TargetSettings(name="bad", query="rate(cpu[5m]", step_seconds=STEP)
    _check_queries(source, [good])
    with pytest.raises(ConfigError, match=r"targets\.bad\.query"):
        _check_queries(source, [good, bad])


def test_the_writer_refuses_a_horizon_victoriametrics_would_drop() -> None:
    far = {"name": "far", "query": "q", "step_seconds": 14_400, "horizon": 13, "window": 8, "model": "naive"}
    push = {"url": "http://vm:8428/api/v1/import/prometheus"}
    load_settings(push=push, targets=[{**far, "horizon": 12, "history": "P30D"}])  # 48 h ahead: the limit
    with pytest.raises(ConfigError, match=r"push\.url: target far forecasts 187200 s ahead"):
        load_settings(push=push, targets=[{**far, "history": "P30D"}])


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def test_the_settings_name_the_victoriametrics_source_and_the_writer() -> None:
    settings = load_settings(source="victoriametrics", push={"url": "http://vm:8428/api/v1/import/prometheus"})
    assert settings.source == "victoriametrics"
    assert settings.victoriametrics.latency_offset_seconds == 30.0
    assert Settings().push.url is None, "the writer is off by default"
    with pytest.raises(ConfigError, match=r"push\.metric"):
        load_settings(push={"url": "http://vm:8428/api/v1/import/prometheus", "metric": "no-dashes"})
