"""Property-based bad input: generated series end in ValueError or a finite forecast, never anything else, and a
valid series always ends in a finite forecast (a product that refuses everything fails here).

560 generated series go through Forecaster.fit / predict_next_12, and 330 generated Prometheus answers of one to
three bad series, each beside one valid series, through the daemon's source-to-window path (Prometheus-shaped
JSON -> group_series -> ForecastJob.cycle): about 1,500 series in all (the two `max_examples` below).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from promcast.daemon.cycle.job import ForecastJob
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.models.serving import ModelHolder, ServedModel
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources.prometheus import group_series
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster, TrainConfig
from promcast.forecaster.gate import DEFAULT_GATE

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")

WINDOW = 8
STEP = 60.0
TINY = TrainConfig(epochs=1, max_batches=2, batch_size=32, progress=False)
MODELS: dict[str, dict[str, Any]] = {"naive": {}, "ar": {}, "mlp": {"hidden": 4, "members": 1}}
KINDS = ("plain", "constant", "huge", "tiny", "nan", "inf", "empty", "short", "duplicate", "decreasing", "gap", "raw")


@st.composite
def bad_series(draw: Any) -> tuple[str, np.ndarray, np.ndarray]:
    """(kind, timestamps in seconds, values): one of the shapes of bad input a user or Prometheus can send."""
    kind = draw(st.sampled_from(KINDS))
    # Long enough means a fit (window + 12) and a gated forecast (window + the gate's recent past).
    longest_need = WINDOW + max(12, DEFAULT_GATE.extra)
    n = {"empty": 0, "short": draw(st.integers(1, WINDOW + 11))}.get(kind, draw(st.integers(longest_need, 90)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.normal(10.0, 3.0, n) + np.sin(np.arange(n) / 3.0)
    ts = np.arange(n, dtype=float) * STEP
    if kind == "raw":
        values = np.array(draw(st.lists(st.floats(width=64), min_size=n, max_size=n)), dtype=float)
    elif kind == "constant":
        values = np.full(n, draw(st.sampled_from([0.0, 7.0, -1e300, 1e-300])))
    elif kind in ("huge", "tiny"):
        values = values * (1e300 if kind == "huge" else 1e-300) * draw(st.sampled_from([1.0, -1.0, 1e7]))
    elif kind in ("nan", "inf") and n:
        bad = np.nan if kind == "nan" else draw(st.sampled_from([np.inf, -np.inf]))
        values[rng.integers(0, n, draw(st.integers(1, 3)))] = bad
    elif kind in ("duplicate", "decreasing") and n > 2:
        i = int(rng.integers(1, n))
        ts[i] = ts[i - 1] if kind == "duplicate" else ts[i - 1] - STEP * float(rng.integers(1, 5))
    elif kind == "gap" and n > 2:
        i = int(rng.integers(1, n))
        ts[i:] += STEP * float(draw(st.sampled_from([2, 6, 50, 10_000])))
    return kind, ts, values


def _as_series(ts: np.ndarray, values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.DatetimeIndex(pd.to_datetime(ts + 1.7e9, unit="s", utc=True)))


@settings(max_examples=560, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=bad_series(), model=st.sampled_from(sorted(MODELS)))
def test_fit_and_predict_end_in_value_error_or_a_finite_forecast(case, model: str) -> None:
    kind, ts, values = case
    series = _as_series(ts, values)
    before = series.copy()
    if kind == "plain":  # finite, regular and long enough: it must be forecast, never refused
        out = (
            Forecaster(model, window=WINDOW, training=TINY, verdict=False, **MODELS[model])
            .fit(series)
            .predict_next_12(series)
        )
        assert out.shape == (12,), (kind, out)
        assert np.isfinite(out).all(), (kind, out)
        pd.testing.assert_series_equal(series, before)
        return
    try:
        f = Forecaster(model, window=WINDOW, training=TINY, verdict=False, **MODELS[model]).fit(series)
    except ValueError:
        pd.testing.assert_series_equal(series, before)
        return
    try:
        out = f.predict_next_12(series)
    except ValueError:
        return
    assert out.shape == (12,), (kind, out)
    assert np.isfinite(out).all(), (kind, out)
    pd.testing.assert_series_equal(series, before)


# ---- the daemon's source-to-window path ---------------------------------------------------------
END = datetime(2026, 1, 1, tzinfo=UTC)


class Canned:
    """A Source that answers what group_series made of the test's Prometheus-shaped JSON."""

    def __init__(self) -> None:
        self.data: dict[SeriesKey, pd.Series] = {}

    def now(self) -> datetime:
        return END

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        return self.data


def _job() -> tuple[ForecastJob, Canned]:
    target = TargetSettings(
        name="t", query="q", step_seconds=STEP, window=WINDOW, history=timedelta(hours=2), model="naive"
    )  # the model it serves below
    source = Canned()
    store = ModelStore(Path(tempfile.mkdtemp(prefix="promcast-props-")), "t")
    holder = ModelHolder(store, target)
    rng = np.random.default_rng(0)
    fit = Forecaster("naive", window=WINDOW, step=target.step).fit(rng.normal(10, 1, 200) + np.arange(200) % 7)
    holder.swap(ServedModel(fit, "v1", store.dir))
    return ForecastJob(target, source, holder, Metrics(CollectorRegistry(), ["t"]), 3.0), source


JOB, SOURCE = _job()
JOB.reader.recent.resync_cycles = (
    0  # every cycle reads in full: each example is a new answer, not the last one's next steps
)


def _text(v: float) -> str:
    return "NaN" if np.isnan(v) else ("+Inf" if v == np.inf else ("-Inf" if v == -np.inf else repr(float(v))))


@settings(max_examples=330, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    cases=st.lists(bad_series(), min_size=1, max_size=3),
    junk=st.sampled_from(["", "x", "1e999", "nan"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_prometheus_json_through_group_series_and_the_cycle(cases, junk: str, seed: int) -> None:
    def rows_of(ts: np.ndarray, values: np.ndarray) -> list[list[Any]]:
        t0 = END.timestamp() - (ts[-1] if len(ts) else 0.0)  # the last sample lands on the cycle's end
        return [[float(t + t0), _text(v)] for t, v in zip(ts, values, strict=True)]

    results = []
    for i, (_, ts, values) in enumerate(cases):
        rows = rows_of(ts, values)
        if junk and rows:
            rows[len(rows) // 2][1] = junk
        results.append({"metric": {"__name__": "m", "pod": f"p{i}", "app": f"a{i % 2}"}, "values": rows})
    n = WINDOW + 20  # one valid series beside the bad ones: the cycle must forecast it whatever they hold
    good = np.random.default_rng(seed).normal(10.0, 3.0, n)
    results.append(
        {"metric": {"__name__": "m", "pod": "v", "app": "valid"}, "values": rows_of(np.arange(n) * STEP, good)}
    )
    SOURCE.data = group_series(results, drop=["pod"])
    for series in SOURCE.data.values():
        assert np.isfinite(series.to_numpy()).all()
        assert series.index.is_monotonic_increasing
        assert not series.index.has_duplicates
    result = JOB.cycle()  # not __call__: an unexpected exception must surface here, not be swallowed
    assert result.ok, result
    assert (("app", "valid"),) in result.keys
    assert result.forecasts is not None
    assert np.isfinite(result.forecasts).all()
    assert result.forecasts.shape == (len(result.keys), 12)


def test_group_series_keeps_ordered_answers_as_they_are_and_sums_what_collides() -> None:
    t0 = END.timestamp()
    results = [
        {
            "metric": {"app": "a", "pod": "1"},
            "values": [[t0, "1.5"], [t0 + 60, "NaN"], [t0 + 120, "+Inf"], [t0 + 180, "2"]],
        },
        {"metric": {"app": "b", "pod": "1"}, "values": [[t0, "1"], [t0 + 60, "oops"], [t0 + 120, "3"]]},
        {"metric": {"app": "b", "pod": "2"}, "values": [[t0 + 120, "4"], [t0 + 180, "5"]]},
    ]
    out = group_series(results, drop=["pod"])
    index = pd.to_datetime([t0, t0 + 180], unit="s", utc=True).as_unit("ns")
    pd.testing.assert_series_equal(out[(("app", "a"),)], pd.Series([1.5, 2.0], index=index), check_freq=False)
    b = out[(("app", "b"),)]  # "oops" is no data; pods 1 and 2 meet at t0 + 120 and are summed
    want = pd.to_datetime([t0, t0 + 120, t0 + 180], unit="s", utc=True).as_unit("ns")
    assert b.index.as_unit("ns").asi8.tolist() == want.asi8.tolist()
    assert b.tolist() == [1.0, 7.0, 5.0]


def test_the_imputed_ratio_counts_the_window_steps_without_a_raw_sample() -> None:
    job, source = _job()
    index = pd.date_range(end=END, periods=60, freq="1min")
    values = pd.Series(10.0 + np.arange(60) % 7, index=index)
    source.data = {(("pod", "a"),): values.drop(index[-5:-3]), (("pod", "b"),): values}  # two steps missing in a
    result = job.cycle()
    assert result.ok
    assert len(result.keys) == 2
    ratio = job.metrics.registry.get_sample_value("promcast_input_imputed_ratio", {"target": "t"})
    assert ratio == pytest.approx(2 / (2 * WINDOW))
