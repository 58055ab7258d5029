"""The live safety net: per series, the guard publishes a fallback while the model loses to it, and
comes back when the model recovers; drift starts one retrain per cool-down."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from promcast.daemon.app import Daemon
from promcast.daemon.cycle.guard import MODEL, Guard, GuardParams, fallback_forecasts
from promcast.daemon.cycle.job import ForecastJob
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.models.serving import ModelHolder
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import Settings, TargetSettings
from promcast.forecaster import Forecaster

from .support.http import samples
from .support.scripted import KEY, START, STEP, Scripted


def _scripted_errors(guard: Guard, model: float, naive: float, n: int, rng: np.random.Generator, noise: float = 0.0):
    """Feed ``n`` scorings of one series with the given mean errors; the sources after each."""
    out = []
    for _ in range(n):
        errors = {
            MODEL: np.abs(model + noise * rng.standard_normal(12)),
            "naive": np.abs(naive + noise * rng.standard_normal(12)),
        }
        guard.update(KEY, errors)
        out.append(guard.sources([KEY])[0])
    return out


def test_the_guard_leaves_a_losing_model_and_comes_back_after_patience() -> None:
    guard, rng = Guard(12, GuardParams(window=8, margin=0.1, patience=3)), np.random.default_rng(0)
    assert _scripted_errors(guard, 1.0, 2.0, 20, rng) == [MODEL] * 20  # the model wins: it serves
    lost = _scripted_errors(guard, 4.0, 1.0, 20, rng)
    assert lost.index("naive") <= 8  # the weighted MAE crosses within a few scorings, then patience
    assert lost[lost.index("naive") :] == ["naive"] * (20 - lost.index("naive"))
    back = _scripted_errors(guard, 0.2, 1.0, 30, rng)
    assert "naive" in back[:2]
    assert back[-1] == MODEL
    assert back[back.index(MODEL) :] == [MODEL] * (30 - back.index(MODEL))


def test_no_decision_before_the_window_and_no_flapping_on_a_noisy_boundary() -> None:
    guard, rng = Guard(12, GuardParams(window=30, margin=0.1, patience=5)), np.random.default_rng(1)
    assert _scripted_errors(guard, 9.0, 1.0, 29, rng) == [MODEL] * 29  # clearly losing, but not seen long enough
    assert _scripted_errors(guard, 9.0, 1.0, 6, rng)[-1] == "naive"
    # The model is now within 5 % of naive, with noise larger than the gap: inside the hysteresis band.
    guard = Guard(12, GuardParams(window=30, margin=0.1, patience=5))
    sources = _scripted_errors(guard, 1.05, 1.0, 400, rng, noise=0.5)
    switches = sum(a != b for a, b in itertools.pairwise(sources))
    assert switches <= 1, switches


def test_seasonal_naive_only_where_a_day_fits() -> None:
    windows = np.arange(30.0)[None, :]
    assert set(fallback_forecasts(windows, 4, None)) == {"naive"}
    both = fallback_forecasts(windows, 4, 24)
    np.testing.assert_array_equal(both["naive"], [[29.0] * 4])
    np.testing.assert_array_equal(both["seasonal_naive"], [[6.0, 7.0, 8.0, 9.0]])  # one period before each step


def _regimes(rng: np.random.Generator) -> tuple[np.ndarray, slice, slice, slice]:
    """A daily-like sine the model was trained on, then a drained service (a low, flat, noisy level) it never saw,
    then the sine again."""
    t = np.arange(900)
    values = 10.0 + 5.0 * np.sin(2 * np.pi * t / 24)
    values[400:600] = 0.5 + np.abs(rng.normal(0.0, 0.05, 200))
    return values, slice(0, 400), slice(400, 600), slice(600, 900)


def _fixed_model_job(tmp_path, **settings) -> tuple[ForecastJob, Scripted, Metrics]:
    """A job serving an AR model fitted on the sine, replayed over the three regimes; ``settings`` for the target."""
    rng = np.random.default_rng(0)
    values, *_ = _regimes(rng)
    train = pd.Series(10.0 + 5.0 * np.sin(2 * np.pi * np.arange(2000) / 24) + rng.normal(0, 0.05, 2000))
    train.index = pd.date_range(START - 2100 * STEP, periods=2000, freq=STEP, tz="UTC")
    target = TargetSettings(
        name="t", query="q", window=24, model="ar", history=timedelta(days=1), capacity_per_replica=4.0, **settings
    )
    store = ModelStore(tmp_path, "t")
    store.publish(Forecaster("ar", window=24, step=STEP, gate=None).fit(train))
    source = Scripted(values)
    metrics = Metrics(CollectorRegistry(), ["t"], clock=lambda: source.now().timestamp())
    return ForecastJob(target, source, ModelHolder(store, target), metrics, 3.0), source, metrics


@pytest.fixture
def job(tmp_path) -> tuple[ForecastJob, Scripted, Metrics]:
    return _fixed_model_job(tmp_path, guard={"window": 8, "margin": 0.1, "patience": 3}, levels=[0.8])


def _run(job: ForecastJob, source: Scripted, steps: range) -> list[tuple[str, np.ndarray, float, np.ndarray]]:
    """Cycles at each step: the published source, forecast, replicas and the last input value."""
    out = []
    for i in steps:
        source.at = START + i * STEP
        result = job()
        assert result.ok, result.error
        fc = job.metrics.snapshot()[0]["t"]
        assert fc.sources is not None
        assert fc.replicas is not None
        out.append((fc.sources[0], fc.values[0], float(fc.replicas[0]), fc.bounds[0.8][1][0]))
    return out


def test_a_drained_service_under_a_fixed_model_switches_to_naive_and_back(job) -> None:
    j, source, metrics = job
    _, calm, walk, back = _regimes(np.random.default_rng(0))
    first = _run(j, source, range(100, calm.stop))
    assert {s for s, *_ in first} == {MODEL}  # the model wins on the regime it learnt
    during = _run(j, source, range(walk.start, walk.stop))
    switched = [s for s, *_ in during].index("naive")
    assert switched <= 8 + 3 + 12, switched  # the window, the patience, and the horizon the first scores wait for
    assert all(s == "naive" for s, *_ in during[switched:])  # and it stays there while the model loses
    for (s, values, replicas, upper), i in zip(during, range(walk.start, walk.stop), strict=True):
        if s == "naive":  # the published forecast is naive's, and so are the replicas recommended on it
            np.testing.assert_allclose(values, source.values[i])
            assert replicas == max(1.0, np.ceil(upper.max() / 4.0))
    after = [s for s, *_ in _run(j, source, range(back.start, back.start + 150))]
    assert after[0] == "naive"  # the model must win again for `patience` scorings first
    recovered = after.index(MODEL)
    assert after[recovered:] == [MODEL] * (150 - recovered)
    page = metrics.exposition().decode()
    assert samples(page, "promcast_fallback_switches_total") == [({"target": "t"}, 2.0)]
    ((labels, value),) = samples(page, "promcast_forecast_source")
    assert labels["source"] == MODEL
    assert labels["instance"] == "a"
    assert value == 1.0


def _drifting(tmp_path, **drift) -> tuple[ForecastJob, Scripted]:
    """A fixed model on the drained regime, its skill far below 0, with drift retraining on."""
    job, source, _ = _fixed_model_job(
        tmp_path, quality_window=20, drift_retrain={"enabled": True, "cycles": 5, **drift}
    )
    return job, source


def test_drift_starts_one_retrain_per_cool_down(tmp_path) -> None:
    job, source = _drifting(tmp_path, cooldown_seconds=3600)
    started: list[tuple[datetime, str]] = []
    job.life.on_drift = lambda target, why: started.append((source.now(), why))
    _run(job, source, range(380, 400))  # the learnt regime: no drift
    assert started == []
    _run(job, source, range(400, 600))  # 200 minutes drained: skill < 0 all along
    assert len(started) == 4, started  # at most one an hour: 200 minutes hold four (0, 60, 120, 180 min after)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(started)]
    assert all(g >= timedelta(hours=1) for g in gaps), gaps
    assert "under 0 for 5 cycles" in started[0][1]


def test_a_failed_drift_retrain_is_counted_and_forecasting_goes_on(tmp_path) -> None:
    job, source = _drifting(tmp_path, cooldown_seconds=1e6)
    settings = Settings(
        listen="127.0.0.1:0", model_dir=tmp_path, prometheus={"url": "http://127.0.0.1:9"}, targets=[job.target]
    )
    daemon = Daemon(settings, source, [job.target])  # its retrain child reads Prometheus, which refuses: it fails
    threads: list[threading.Thread] = []
    daemon.jobs["t"].life.on_drift = lambda target, why: threads.append(daemon.retrain_in_background(target, why))
    for i in range(380, 430):
        source.at = START + i * STEP
        assert daemon.jobs["t"]().ok
    assert len(threads) == 1
    threads[0].join(timeout=120)
    page = daemon.metrics.exposition().decode()
    assert ({"target": "t", "reason": "drift"}, 1.0) in samples(page, "promcast_retrains_total")
    assert ({"target": "t", "stage": "train"}, 1.0) in samples(page, "promcast_errors_total")
    source.at = START + 430 * STEP
    assert daemon.jobs["t"]().ok  # the cycle after the failed retrain still forecasts


def test_the_shift_demo_drains_then_comes_back_higher() -> None:
    from promcast.daemon.settings import DemoSettings
    from promcast.daemon.sources.demo import SHIFT, SHIFT_LEVEL, DemoSource

    shift, diurnal = DemoSource(DemoSettings(workload="shift"), STEP), DemoSource(DemoSettings(), STEP)
    diurnal._sim_start = shift._sim_start  # the same simulated clock: only the level factor differs
    target = TargetSettings(name="demo", query="q", window=24, history=timedelta(days=1))
    t0 = shift.now()
    for begin, factor in ((-timedelta(hours=1), 1.0), (SHIFT[0] + STEP, 0.02), (SHIFT[1] + STEP, SHIFT_LEVEL)):
        lo, hi = t0 + begin, t0 + begin + timedelta(minutes=29)  # half an hour inside one regime
        (got,) = shift.fetch(target, lo, hi).values()
        (base,) = diurnal.fetch(target, lo, hi).values()
        assert len(got) >= 29
        np.testing.assert_allclose(got.to_numpy(), base.to_numpy() * factor)


def test_the_replay_source_serves_nothing_after_its_clock() -> None:
    from promcast.daemon.sources.replay import ReplaySource

    series = pd.Series(np.arange(10.0), index=pd.date_range(START, periods=10, freq=STEP, tz="UTC"))
    source = ReplaySource(series)
    source.at = START + 4 * STEP
    target = TargetSettings(name="t", query="q", window=2, history=timedelta(hours=1))
    (got,) = source.fetch(target, START, START + 9 * STEP).values()
    assert got.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert source.now() == START + 4 * STEP


def test_a_series_on_a_fallback_publishes_the_fallbacks_own_laplace_interval() -> None:
    """Naive's MAE per step is 1, 2, 3 and not scored yet at step 4 (the widest scored, 3, stands in); its interval
    is naive's point +- MAE x ln(1 / (1 - level))."""
    other = (("instance", "b"),)
    guard = Guard(4, GuardParams(window=2, margin=0.1, patience=1))
    for _ in range(2):  # constant errors: the weighted MAE is exactly these
        guard.update(KEY, {MODEL: np.full(4, 5.0), "naive": np.array([1.0, 2.0, 3.0, np.nan])})
    assert guard.sources([KEY, other]) == ["naive", MODEL]
    model = np.array([[50.0, 51.0, 52.0, 53.0], [60.0, 61.0, 62.0, 63.0]])
    bounds = {0.8: (model - 1.0, model + 1.0), 0.95: (model - 2.0, model + 2.0)}
    naive = np.array([[7.0] * 4, [9.0] * 4])
    values, published, sources = guard.apply([KEY, other], model, bounds, {"naive": naive})
    assert sources == ["naive", MODEL]
    np.testing.assert_array_equal(values, [[7.0] * 4, [60.0, 61.0, 62.0, 63.0]])
    ln5, ln20 = 1.6094379124341003, 2.995732273553991  # ln(1 / (1 - 0.8)), ln(1 / (1 - 0.95))
    mae = np.array([1.0, 2.0, 3.0, 3.0])
    np.testing.assert_allclose(published[0.8][0][0], 7.0 - mae * ln5, rtol=1e-12)
    np.testing.assert_allclose(published[0.8][1][0], 7.0 + mae * ln5, rtol=1e-12)
    np.testing.assert_allclose(published[0.95][0][0], 7.0 - mae * ln20, rtol=1e-12)
    np.testing.assert_allclose(published[0.95][1][0], 7.0 + mae * ln20, rtol=1e-12)
    np.testing.assert_allclose(published[0.8][1][0], [8.6094379, 10.2188758, 11.8283137, 11.8283137], rtol=1e-7)
    # the series still on the model keeps the model's bands
    np.testing.assert_array_equal(published[0.8][1][1], model[1] + 1.0)
    np.testing.assert_array_equal(published[0.95][0][1], model[1] - 2.0)


HOUR = timedelta(hours=1)


class _Hourly(Scripted):
    """Scripted, one value an hour: a day is 24 steps, which a 24-step window holds."""

    def __init__(self, values: np.ndarray) -> None:
        super().__init__(values)
        self.index = pd.date_range(START, periods=len(values), freq=HOUR, tz="UTC")


def _daily(n: int) -> np.ndarray:
    """A clean daily cycle at one value an hour: a sine, plus a business-hours plateau it cannot be told from."""
    hour = np.arange(n) % 24
    return 10.0 + 5.0 * np.sin(2 * np.pi * hour / 24) + 3.0 * ((hour >= 9) & (hour < 17))


def test_on_a_daily_workload_the_guard_publishes_seasonal_naive(tmp_path) -> None:
    """A model of flat noise against a clean daily cycle: seasonal naive (the value one day before) is exact, so the
    guard moves the series to it, and the published forecast is the value 24 hours before each target hour."""
    rng = np.random.default_rng(0)
    train = pd.Series(10.0 + rng.normal(0, 1.0, 600))
    train.index = pd.date_range(START - 700 * HOUR, periods=600, freq=HOUR, tz="UTC")
    target = TargetSettings(
        name="t",
        query="q",
        step_seconds=3600,
        window=24,
        model="ar",
        history=timedelta(days=10),
        levels=[0.8],
        guard={"window": 8, "margin": 0.1, "patience": 3},
    )
    assert target.day_steps == 24
    store = ModelStore(tmp_path, "t")
    store.publish(Forecaster("ar", window=24, step=HOUR, gate=None).fit(train))
    values = _daily(200)
    source = _Hourly(values)
    metrics = Metrics(CollectorRegistry(), ["t"], clock=lambda: source.now().timestamp())
    job = ForecastJob(target, source, ModelHolder(store, target), metrics, 3.0)
    published = {}
    for i in range(48, 100):
        source.at = START + i * HOUR
        assert job().ok
        fc = metrics.snapshot()[0]["t"]
        assert fc.sources is not None
        published[i] = (fc.sources[0], fc.values[0].copy())
    assert published[48][0] == MODEL
    assert [s for s, _ in list(published.values())[-20:]] == ["seasonal_naive"] * 20
    for i in range(80, 100):
        # step h of the forecast made at hour i is hour i + h; seasonal naive gives it hour i + h - 24's value
        one_day_before = np.array([values[i + h - 24] for h in range(1, 13)])
        np.testing.assert_array_equal(published[i][1], one_day_before)
        assert not np.array_equal(published[i][1], np.full(12, values[i]))  # not naive's last value repeated
