"""When cycles run and which origin they publish: at the step boundary plus the settle delay, on data fresh at
publication, and an overlay that is exact at any second of the step, checked against a real Prometheus."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.forecaster import Forecaster
from promcast.forecaster.synthetic import diurnal

from .support.prometheus_server import PrometheusServer, require_prometheus

STEP = 5.0  # seconds: a real-time step short enough for a test
SETTLE = 0.5


def naive_store(tmp, window: int, step: str) -> None:
    f = Forecaster("naive", window=window, horizon=12, step=step).fit(diurnal(window + 300, step, seed=1))
    ModelStore(tmp, "demo").publish(f)


def test_cycles_run_at_the_boundary_plus_settle_and_the_overlay_is_exact_at_any_second(tmp_path) -> None:
    require_prometheus()
    target = TargetSettings(
        name="demo", query=DEMO_QUERY, step_seconds=STEP, window=24, history="PT1H", settle_seconds=SETTLE
    )
    naive_store(tmp_path, 24, "5s")
    source = DemoSource(DemoSettings(series=2, step_seconds=STEP), target.step)
    d = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path), source, [target])
    # Start half-way through a step: cycles counted from the start second would run 2.5 s after each boundary.
    time.sleep((2.5 - time.time() % STEP) % STEP)
    started = time.time()
    d.start()
    try:
        assert d.server is not None
        with PrometheusServer(tmp_path / "prom", scrape_targets=[f"127.0.0.1:{d.server.port}"]) as prom:
            stamps: set[float] = set()
            while time.time() < started + 6.2 * STEP:
                fc = d.metrics.snapshot()[0].get("demo")
                if fc is not None:
                    stamps.add(fc.computed_at)
                time.sleep(0.05)
            # Every cycle after the one at start-up ran settle seconds after a boundary.
            later = sorted(s for s in stamps if s > started + 1.0)
            assert len(later) >= 5
            lateness = [s % STEP for s in later]
            assert all(SETTLE <= x < SETTLE + 1.5 for x in lateness), lateness
            # The forecast made h steps before T, at T = a boundary plus 0..4 s: what an actual-vs-forecast panel
            # plots. Its sample time is its origin, so the overlay picks the right origin at any second.
            boundary = (time.time() // STEP - 1) * STEP
            for second in (0.0, 1.0, 2.0, 3.0, 4.0, 4.9):
                at = boundary + second
                origin = (at - 2 * STEP) // STEP * STEP
                q = f'promcast_forecast_at_origin{{series="s0", h="2"}} offset {2 * STEP:g}s'
                (got,) = prom.query(q, eval_time=at)
                (stamp,) = prom.query(f"timestamp({q})", eval_time=at)
                when = datetime.fromtimestamp(origin, UTC)
                want = source.fetch(target, when, when)[(("series", "s0"),)].iloc[-1]  # naive: the origin's value
                assert float(stamp["value"][1]) == pytest.approx(origin), second
                assert float(got["value"][1]) == pytest.approx(want, rel=1e-6), second  # float32 inference
    finally:
        d.shutdown()


class JumpyDemo(DemoSource):
    """The demo on a clock the test sets; chosen reads move the clock on, as a long training or a slow query
    lets real time pass."""

    def __init__(self, settings: DemoSettings, step: timedelta, jumps: dict[int, timedelta]) -> None:
        super().__init__(settings, step)
        self.clock = datetime(2026, 1, 5, 0, 0, 30, tzinfo=UTC)
        self.jumps, self.reads = jumps, 0

    def now(self) -> datetime:
        return self.clock

    def fetch(self, target, start, end):  # type: ignore[no-untyped-def]
        self.reads += 1
        self.clock += self.jumps.get(self.reads, timedelta(0))
        return super().fetch(target, start, end)


def jumpy_daemon(tmp_path, jumps: dict[int, timedelta], trained: bool) -> tuple[Daemon, JumpyDemo]:
    target = TargetSettings(
        name="demo", query=DEMO_QUERY, window=24, history=timedelta(hours=12), epochs=1, hparams={"hidden": 8}
    )
    if trained:
        naive_store(tmp_path, 24, "60s")
    source = JumpyDemo(DemoSettings(series=2), target.step, jumps)
    return Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path), source, [target]), source


def test_the_first_forecast_after_a_long_training_starts_at_the_fresh_end(tmp_path) -> None:
    # The first training's history reads (one short probe, then two pages) take 150 s of the source's clock.
    d, _ = jumpy_daemon(tmp_path, {2: timedelta(seconds=150)}, trained=False)
    (result,) = d.run_once()
    assert result.ok, result.error
    assert result.end == datetime(2026, 1, 5, 0, 3, tzinfo=UTC)  # not 00:00, when the cycle began
    fc = d.metrics.snapshot()[0]["demo"]
    assert fc.origin == result.end.timestamp()
    assert np.all(fc.origins == fc.origin)


def test_a_cycle_that_ends_past_the_next_boundary_is_run_again_on_fresh_data(tmp_path) -> None:
    d, _ = jumpy_daemon(tmp_path, {1: timedelta(seconds=60)}, trained=True)  # the first read takes a step
    (result,) = d.run_once()
    assert result.ok, result.error
    assert result.end == datetime(2026, 1, 5, 0, 1, tzinfo=UTC)
    assert d.metrics.snapshot()[0]["demo"].origin == result.end.timestamp()
    assert d.registry.get_sample_value("promcast_errors_total", {"target": "demo", "stage": "late"}) == 0


def test_a_forecast_a_step_old_is_never_published(tmp_path) -> None:
    every_read = {n: timedelta(seconds=60) for n in range(1, 10)}
    d, _ = jumpy_daemon(tmp_path, every_read, trained=True)
    (result,) = d.run_once()
    assert not result.ok
    assert "a step old" in (result.error or "")
    assert "demo" not in d.metrics.snapshot()[0]
    assert d.registry.get_sample_value("promcast_errors_total", {"target": "demo", "stage": "late"}) == 1
