"""The cycle's input windows: one vectorised pass on the step grid, with the gap policy and per-series origins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.cycle.quality import QualityTracker
from promcast.daemon.cycle.windows import build_windows
from promcast.forecaster.data import regularise

STEP = timedelta(minutes=1)
END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
W, MAX_GAP = 48, 5
GRID = W + 2 * MAX_GAP + 3


def series(values: np.ndarray, last: datetime = END, drop: slice | None = None) -> pd.Series:
    index = pd.date_range(end=last, periods=len(values), freq=STEP)
    s = pd.Series(values, index=index)
    if drop is not None:
        s = s.drop(s.index[drop])
    return s


def test_windows_equal_the_per_series_regularise_where_gaps_are_short() -> None:
    """The old per-series path (regularise, then the last W points) and the vectorised one agree exactly."""
    rng = np.random.default_rng(0)
    data = {}
    for i in range(200):
        s = series(rng.normal(size=GRID).cumsum() + 50, END - int(rng.integers(0, MAX_GAP + 1)) * STEP)
        holes = rng.choice(np.arange(1, GRID - 1), size=6, replace=False)  # lone holes: each gap is one step
        data[(("i", f"{i:03d}"),)] = s.drop(s.index[holes])
    win = build_windows(data, END, STEP, W, MAX_GAP, GRID, MAX_GAP)
    assert win.keys == sorted(data)
    assert not win.skipped
    assert not win.long_gap.any()
    for row, key in enumerate(win.keys):
        reg = regularise(data[key], STEP, MAX_GAP)
        np.testing.assert_array_equal(win.values[row], reg.values[-W:])
        assert win.origins[row] == data[key].index[-1].value
        raw = set(data[key].index.as_unit("ns").asi8)
        assert win.filled[row] == sum(t.value not in raw for t in reg.index[-W:])


def test_a_gap_longer_than_max_gap_is_filled_flagged_and_counted() -> None:
    values = np.arange(GRID, dtype=float)
    gap = slice(GRID - 30, GRID - 10)  # 20 steps missing inside the window: an outage
    win = build_windows({(("s", "a"),): series(values, drop=gap)}, END, STEP, W, MAX_GAP, GRID, MAX_GAP)
    assert win.keys == [(("s", "a"),)]
    assert not win.skipped
    assert win.long_gap.tolist() == [True]
    assert win.filled.tolist() == [20]
    np.testing.assert_allclose(win.values[0], values[-W:])  # a straight line is filled back exactly
    assert win.imputed_ratio == pytest.approx(20 / W)


def test_a_lagging_series_is_forecast_from_its_own_last_sample() -> None:
    values = np.arange(GRID, dtype=float)
    last = END - 3 * STEP
    win = build_windows({(("s", "late"),): series(values, last)}, END, STEP, W, MAX_GAP, GRID, MAX_GAP)
    assert win.origins.tolist() == [pd.Timestamp(last).value]
    assert win.values[0, -1] == values[-1]
    assert win.filled.tolist() == [0]


def test_a_series_lagging_past_max_lag_has_stopped_and_one_within_it_is_forecast() -> None:
    one, two = series(np.ones(GRID), END - STEP), series(np.ones(GRID), END - 2 * STEP)
    win = build_windows({(("s", "one"),): one, (("s", "two"),): two}, END, STEP, W, MAX_GAP, GRID, max_lag=1)
    assert win.keys == [(("s", "one"),)]
    assert win.origins.tolist() == [pd.Timestamp(END - STEP).value]
    assert win.stopped == [(("s", "two"),)]
    assert win.skipped == []


def test_stale_short_and_non_finite_series_are_skipped_with_their_reason() -> None:
    ok = series(np.ones(GRID))
    data = {
        (("s", "ok"),): ok,
        (("s", "stale"),): series(np.ones(GRID), END - (MAX_GAP + 1) * STEP),
        (("s", "short"),): series(np.ones(W - 1)),
        (("s", "nan"),): ok.where(ok.index != ok.index[-5]),
    }
    win = build_windows(data, END, STEP, W, MAX_GAP, GRID, MAX_GAP)
    assert win.keys == [(("s", "ok"),)]
    assert win.stopped == [(("s", "stale"),)]  # MAX_GAP + 1 steps behind: stopped, not a fault of its values
    reasons = {dict(k)["s"]: r for k, r in win.skipped}
    assert set(reasons) == {"short", "nan"}
    assert reasons["short"] == f"need {W} points, got {W - 1}"
    assert "NaN" in reasons["nan"]


def test_quality_scores_each_series_against_its_own_origin() -> None:
    """A lagging series' step h forecasts its own origin + h steps, not the cycle's end + h steps."""
    q = QualityTracker(pd.Timedelta(STEP), 2, (), 10, 0.0)
    end, late = pd.Timestamp(END), pd.Timestamp(END - 3 * STEP)
    keys = [(("s", "a"),), (("s", "late"),)]
    q.record(end, keys, np.array([[1.0, 2.0], [1.0, 2.0]]), np.zeros(2), {}, np.array([end.value, late.value]))
    times = pd.date_range(late, periods=6, freq=STEP)  # late .. end + 2 steps
    own = pd.Series([0.0, 1.0, 2.0, 9.0, 7.0, 8.0], index=times)  # hit at late + 1, late + 2 only
    at_end = pd.Series([0.0, 5.0, 5.0, 9.0, 1.0, 2.0], index=times)  # hit at end + 1, end + 2 only
    q.observe({keys[0]: at_end, keys[1]: own})
    snap = q.snapshot()
    assert snap.mae == [0.0, 0.0]  # both series hit exactly at their own target times
    assert snap.naive_mae == [1.0, 2.0]  # naive: the last input, 0, against 1 and 2


def _on_grid(last: datetime = END) -> pd.Series:
    """GRID samples of 1.0, one on each grid point up to ``last``."""
    return series(np.ones(GRID), last)


def test_samples_that_share_a_step_are_averaged() -> None:
    s = _on_grid().drop(END - 5 * STEP)  # the point END - 5 min gets two samples from inside its step instead
    extra = pd.Series(
        [3.0, 8.0], index=[END - 5 * STEP - timedelta(seconds=45), END - 5 * STEP - timedelta(seconds=15)]
    )
    win = build_windows({(("s", "a"),): pd.concat([s, extra]).sort_index()}, END, STEP, W, MAX_GAP, GRID, MAX_GAP)
    expected = np.ones(W)
    expected[W - 1 - 5] = (3.0 + 8.0) / 2
    np.testing.assert_array_equal(win.values[0], expected)
    assert win.filled.tolist() == [0]


def test_an_off_grid_sample_belongs_to_the_grid_point_after_it() -> None:
    """A sample 30 s after END - 20 min lies in the step that ends at END - 19 min: it is that point's value, and
    END - 20 min, which has no sample, is interpolated between its neighbours."""
    s = _on_grid().drop([END - 20 * STEP, END - 19 * STEP])
    late = pd.Series([42.0], index=[END - 20 * STEP + timedelta(seconds=30)])
    win = build_windows({(("s", "a"),): pd.concat([s, late]).sort_index()}, END, STEP, W, MAX_GAP, GRID, MAX_GAP)
    expected = np.ones(W)
    expected[W - 1 - 19] = 42.0
    expected[W - 1 - 20] = (1.0 + 42.0) / 2  # halfway between END - 21 min (1.0) and END - 19 min (42.0)
    np.testing.assert_array_equal(win.values[0], expected)
    assert win.filled.tolist() == [1]


def test_a_series_whose_last_sample_is_off_grid_has_its_origin_on_the_point_after_it() -> None:
    s = _on_grid(END - 3 * STEP)
    late = pd.Series([7.0], index=[END - 2 * STEP - timedelta(seconds=1)])  # 59 s after END - 3 min
    win = build_windows({(("s", "a"),): pd.concat([s, late])}, END, STEP, W, MAX_GAP, GRID, MAX_GAP)
    assert win.origins.tolist() == [pd.Timestamp(END - 2 * STEP).value]
    assert win.values[0, -1] == 7.0
    assert win.values[0, -2] == 1.0
