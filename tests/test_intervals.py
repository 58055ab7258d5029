"""Split-conformal intervals: calibrated coverage on known noise, stored in the artifact, sane shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promcast.forecaster import Forecaster, TrainConfig
from promcast.forecaster.splits import make_windows

LEVELS = (0.8, 0.95)


def _noisy(n: int, seed: int) -> pd.Series:
    """A daily sine at a 10-minute step plus Gaussian noise of known spread."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 100 + 10 * np.sin(2 * np.pi * t / 144) + rng.normal(0, 2.0, n)
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="10min"))


@pytest.fixture(scope="module")
def fitted() -> Forecaster:
    return Forecaster("ar", window=48, horizon=12, val_ratio=0.4).fit(_noisy(8000, seed=0))


def test_coverage_matches_each_level_on_fresh_data(fitted: Forecaster) -> None:
    test = _noisy(3000, seed=1).to_numpy()
    X, y = make_windows(test, 48, 12)
    assert len(X) >= 2000
    _, bounds = fitted.predict_interval(X, LEVELS)
    for level in LEVELS:
        lo, hi = bounds[level]
        covered = float(np.mean((y >= lo) & (y <= hi)))
        assert abs(covered - level) <= 0.03, f"level {level}: coverage {covered:.3f} over {len(X)} windows"


def test_wider_level_gives_wider_bounds_around_the_point(fitted: Forecaster) -> None:
    series = _noisy(500, seed=2)
    point, bounds = fitted.forecast_interval(series, LEVELS)
    assert point.shape == (12,)
    np.testing.assert_allclose(point, fitted.predict_next_12(series))
    lo80, hi80 = bounds[0.8]
    lo95, hi95 = bounds[0.95]
    assert (lo95 <= lo80).all()
    assert (lo80 <= point).all()
    assert (point <= hi80).all()
    assert (hi80 <= hi95).all()


def test_calibration_travels_with_the_artifact(fitted: Forecaster, tmp_path) -> None:
    loaded = Forecaster.load(fitted.save(tmp_path / "m"))
    X = _noisy(200, seed=3).to_numpy()[None, -48:]
    a, b = fitted.predict_interval(X), loaded.predict_interval(X)
    for level in LEVELS:
        np.testing.assert_allclose(a[1][level][0], b[1][level][0], rtol=1e-6)


def test_bounds_scale_with_the_series(fast: TrainConfig) -> None:
    """The score is unit-free: a series ten times larger gets bands ten times wider around its forecast."""
    mlp = Forecaster("mlp", window=48, val_ratio=0.3, training=fast, hidden=16).fit(_noisy(3000, seed=5))
    X = _noisy(200, seed=4).to_numpy()[None, -mlp.input_length :]
    p1, b1 = mlp.predict_interval(X)
    p10, b10 = mlp.predict_interval(10 * X)
    np.testing.assert_allclose(b10[0.8][1] - p10, 10 * (b1[0.8][1] - p1), rtol=1e-4)


def test_no_calibration_is_a_clear_error(seasonal: pd.Series) -> None:
    f = Forecaster("naive", window=24, val_ratio=0.0).fit(seasonal)
    with pytest.raises(ValueError, match="no interval calibration"):
        f.forecast_interval(seasonal)
