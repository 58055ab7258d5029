"""Bad input raises ValueError naming the problem, with the numbers; the caller's data is never mutated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promcast.forecaster import Forecaster, NotFittedError


@pytest.fixture
def fitted(seasonal: pd.Series) -> Forecaster:
    return Forecaster("naive", window=24).fit(seasonal)


def test_nan_and_inf_are_named(seasonal: pd.Series) -> None:
    for bad, word in ((np.nan, "NaN"), (np.inf, "infinite")):
        s = seasonal.copy()
        s.iloc[10] = bad
        with pytest.raises(ValueError, match=rf"1 NaN or infinite value\(s\); the first \({word}\) is at position 10"):
            Forecaster("naive", window=24).fit(s)


def test_too_few_points_to_fit(seasonal: pd.Series) -> None:
    with pytest.raises(ValueError, match="need at least window \\+ horizon = 24 \\+ 12 = 36 points to fit, got 35"):
        Forecaster("naive", window=24).fit(seasonal.iloc[:35])


def test_too_few_points_to_predict(fitted: Forecaster, seasonal: pd.Series) -> None:
    with pytest.raises(ValueError, match="need at least input_length = 24 points to predict, got 23"):
        fitted.predict_next_12(seasonal.iloc[:23])
    with pytest.raises(ValueError, match="need at least input_length = 24 points to predict, got 5"):
        fitted.predict_next_12(np.ones(5))


def test_constant_series() -> None:
    s = pd.Series(7.0, index=pd.date_range("2024-01-01", periods=100, freq="1min"))
    with pytest.raises(ValueError, match="constant \\(every value is 7\\)"):
        Forecaster("naive", window=24).fit(s)


def test_duplicate_and_decreasing_timestamps(seasonal: pd.Series) -> None:
    idx = seasonal.index.tolist()
    dup = pd.Series(seasonal.to_numpy(), index=pd.DatetimeIndex([*idx[:5], idx[4], *idx[6:]]))
    with pytest.raises(ValueError, match=r"duplicate timestamp .* at position 5"):
        Forecaster("naive", window=24).fit(dup)
    dec = pd.Series(seasonal.to_numpy(), index=pd.DatetimeIndex([*idx[:5], idx[3], *idx[6:]]))
    with pytest.raises(ValueError, match=r"decreasing timestamps: .* at position 5"):
        Forecaster("naive", window=24).fit(dec)


def test_non_numeric_values(seasonal: pd.Series) -> None:
    s = pd.Series(["1", "x"] * 50, index=seasonal.index[:100])
    with pytest.raises(ValueError, match="not numeric"):
        Forecaster("naive", window=24).fit(s)
    with pytest.raises(ValueError, match="not numeric"):
        Forecaster("naive", window=24).fit(["a"] * 50)


def test_predict_before_fit() -> None:
    f = Forecaster("gru", window=24)
    with pytest.raises(NotFittedError, match="not fitted"):
        f.predict_next_12(np.ones(30))
    assert issubclass(NotFittedError, ValueError)
    with pytest.raises(NotFittedError):
        f.save("/nonexistent")


def test_wrong_window_shape_for_batch(fitted: Forecaster) -> None:
    with pytest.raises(ValueError, match=r"expected windows of shape \(N, 24\), got \(3, 10\)"):
        fitted.predict(np.ones((3, 10)))


def test_input_is_not_mutated_on_error(seasonal: pd.Series) -> None:
    s = seasonal.copy()
    s.iloc[3] = np.nan
    before = s.copy()
    with pytest.raises(ValueError):
        Forecaster("naive", window=24).fit(s)
    pd.testing.assert_series_equal(s, before)
