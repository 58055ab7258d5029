"""Data pipeline: loading, regular step, gap policy, scalers on train only, windows and splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promcast.forecaster import Forecaster, TrainConfig
from promcast.forecaster.data import load_csv, regularise
from promcast.forecaster.scalers import make_scaler, scaler_from_dict
from promcast.forecaster.splits import chronological_split, make_windows, split_windows

from .conftest import shared_data


def _series(values, minutes) -> pd.Series:
    base = pd.Timestamp("2024-01-01")
    return pd.Series(values, index=pd.DatetimeIndex([base + pd.Timedelta(minutes=m) for m in minutes]))


def test_regularise_infers_the_median_step_and_averages_per_step() -> None:
    s = _series([1.0, 3.0, 5.0, 7.0, 9.0, 10.0, 11.0], [0, 1, 1.5, 2, 3, 4, 5])
    reg = regularise(s)
    assert reg.step == pd.Timedelta("1min")
    np.testing.assert_allclose(reg.values, [1.0, 4.0, 7.0, 9.0, 10.0, 11.0])  # minute 1 holds 3 and 5


def test_short_gaps_are_interpolated_and_counted() -> None:
    s = _series([0.0, 1.0, 4.0, 5.0], [0, 1, 4, 5])
    reg = regularise(s, max_gap=2)
    np.testing.assert_allclose(reg.values, [0, 1, 2, 3, 4, 5])
    assert reg.imputed == 2
    assert reg.unbridged == 0
    assert reg.imputed_ratio == pytest.approx(2 / 6)


def test_long_gaps_are_never_bridged() -> None:
    s = _series([0.0, 1.0, 9.0], [0, 1, 9])
    reg = regularise(s, step="1min", max_gap=3)
    assert np.isnan(reg.values[2:9]).all()
    assert reg.imputed == 0
    assert reg.unbridged == 7
    # None bridges every gap, as the benchmark protocol does.
    assert np.isfinite(regularise(s, step="1min", max_gap=None).values).all()


def test_windows_crossing_a_long_gap_are_dropped() -> None:
    values = np.arange(30, dtype=float)
    values[10:15] = np.nan
    X, y = split_windows(values, 4, 2, 0, 30)
    assert np.isfinite(X).all()
    assert np.isfinite(y).all()
    assert len(X) == (10 - 6 + 1) + (30 - 15 - 6 + 1)


def test_predicting_over_a_long_gap_raises(seasonal: pd.Series, fast: TrainConfig) -> None:
    f = Forecaster("naive", window=12).fit(seasonal)
    holed = pd.concat([seasonal.iloc[:-20], seasonal.iloc[-5:]])  # 15 missing steps inside the last 12+
    with pytest.raises(ValueError, match="gap longer than max_gap"):
        f.predict_next_12(holed)


def test_make_windows_are_views_with_the_right_shape() -> None:
    values = np.arange(20, dtype=float)
    X, y = make_windows(values, 5, 3)
    assert X.shape == (13, 5)
    assert y.shape == (13, 3)
    assert np.shares_memory(X, values)
    assert np.shares_memory(y, values)
    np.testing.assert_array_equal(X[2], [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(y[2], [7, 8, 9])


def test_window_edge_cases() -> None:
    X, y = make_windows(np.arange(8.0), 5, 3)
    assert X.shape == (1, 5)
    assert y.shape == (1, 3)
    with pytest.raises(ValueError, match="at least window \\+ horizon = 8 points, got 7"):
        make_windows(np.arange(7.0), 5, 3)
    with pytest.raises(ValueError, match="window must be >= 1"):
        make_windows(np.arange(7.0), 0, 3)


def test_no_training_target_lies_in_validation_or_test() -> None:
    values = np.arange(100, dtype=float)
    split = chronological_split(100, val_ratio=0.1, test_ratio=0.2)
    assert (split.train_end, split.val_end) == (70, 80)
    _, y = split_windows(values, 10, 5, 0, split.train_end)
    assert y.max() < split.train_end
    Xv, yv = split_windows(values, 10, 5, split.train_end, split.val_end)
    assert len(Xv) == 6
    assert yv.min() >= split.train_end
    assert yv.max() < split.val_end
    assert Xv.min() >= split.train_end - 10  # inputs may reach back into train


def test_the_scaler_never_sees_validation_data(seasonal: pd.Series) -> None:
    s = seasonal.copy()
    s.iloc[-200:] += 1e6  # a huge shift confined to the held-out part
    f = Forecaster("naive", window=12, val_ratio=0.25).fit(s)
    train_part = s.iloc[: len(s) - round(len(s) * 0.25)]
    assert f.meta["scaler"]["shift"] == pytest.approx(train_part.mean())
    assert f.meta["scaler"]["scale"] == pytest.approx(train_part.std(ddof=0))


def test_scalers_are_invertible_plain_numbers_with_an_epsilon() -> None:
    data = np.array([3.0, 5.0, 9.0])
    for kind in ("standard", "minmax"):
        sc = make_scaler(kind, data)
        np.testing.assert_allclose(sc.inverse(sc.transform(data)), data)
        assert scaler_from_dict(sc.to_dict()) == sc
    flat = make_scaler("standard", np.ones(5))
    assert flat.scale > 0
    assert np.isfinite(flat.transform(np.ones(3))).all()
    mm = make_scaler("minmax", data)
    np.testing.assert_allclose(mm.transform(data), [0.0, 1 / 3, 1.0])


def test_load_csv_reads_timestamp_value(tmp_path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:01:00,2.5\n")
    s = load_csv(p)
    assert list(s) == [1.0, 2.5]
    assert isinstance(s.index, pd.DatetimeIndex)


def test_load_csv_names_a_non_numeric_value(tmp_path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:01:00,abc\n")
    with pytest.raises(ValueError, match="non-numeric value 'abc' in column 'value' at row 3"):
        load_csv(p)


def test_load_csv_reads_a_named_column_of_etth1() -> None:
    s = load_csv(shared_data("ETTh1.csv"), value_column="OT")
    assert len(s) == 17420
    assert regularise(s).step == pd.Timedelta("1h")


def test_load_csv_reads_unix_seconds_as_prometheus_writes_them(tmp_path) -> None:
    """1,700,000,000 s after the epoch is 2023-11-14 22:13:20 UTC; a minute later, 22:14:20."""
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n1700000000,1\n1700000060.0,2\n")
    s = load_csv(path)
    assert s.index[0] == pd.Timestamp("2023-11-14 22:13:20")
    assert s.index[1] - s.index[0] == pd.Timedelta(minutes=1)
