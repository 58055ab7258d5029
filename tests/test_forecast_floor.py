"""A series that is never negative is not forecast below zero, bounds included: a real AR model that extrapolates a
falling series through zero, served by the daemon, read from its /metrics page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import Settings, TargetSettings
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster

from .support.http import samples, scrape

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
W = 24
LEVELS = (0.8, 0.95)


class Fixed:
    """A Source answering fixed series: the daemon's input boundary; everything after it is the daemon's own."""

    def __init__(self, data: dict[SeriesKey, pd.Series]) -> None:
        self.data = data

    def now(self) -> datetime:
        return NOW

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        return {k: s[(s.index >= start) & (s.index <= end)] for k, s in self.data.items()}


def _falling(last: float) -> pd.Series:
    """60 minutes falling by 0.5 a minute to ``last`` at NOW."""
    values = last + 0.5 * np.arange(60)[::-1]
    return pd.Series(values, index=pd.date_range(end=NOW, periods=60, freq="1min"))


NEAR_ZERO: SeriesKey = (("instance", "near_zero"),)  # never negative: 31.7 down to 2.2
CROSSED: SeriesKey = (("instance", "crossed"),)  # below zero at the end of its window: 28.7 down to -0.8


@pytest.fixture
def page(tmp_path: Path) -> tuple[dict[str, dict], np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]]:
    """/metrics after one cycle of two targets that differ only in clip_negative, and the model's own output."""
    data = {NEAR_ZERO: _falling(2.2), CROSSED: _falling(-0.8)}
    rng = np.random.default_rng(0)
    model = Forecaster("ar", window=W, step="60s").fit(300 - 0.5 * np.arange(600) + rng.normal(0, 0.1, 600))
    targets = [
        TargetSettings(name=name, query="load", window=W, history=timedelta(days=1), clip_negative=clip)
        for name, clip in (("clipped", True), ("raw", False))
    ]
    for t in targets:
        ModelStore(tmp_path / "models", t.name).publish(model)
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models"), Fixed(data), targets)
    assert all(r.ok for r in daemon.run_once())
    served = daemon.holders["clipped"].get()
    assert served is not None
    windows = np.stack([data[k].to_numpy()[-W:] for k in sorted(data)])  # the daemon's batch order
    point, bounds = served.forecaster.predict_interval(windows, LEVELS)
    text = scrape(daemon)
    published: dict[str, dict] = {}
    for family in ("promcast_forecast", "promcast_forecast_lower", "promcast_forecast_upper"):
        for labels, value in samples(text, family):
            key = (family, labels["target"], labels["instance"], labels.get("level"))
            published.setdefault(str(key), {})[int(labels["h"])] = value
    return published, point, bounds


def _row(published: dict[str, dict], family: str, target: str, instance: str, level: float | None) -> np.ndarray:
    by_h = published[str((family, target, instance, None if level is None else f"{level:g}"))]
    return np.array([by_h[h] for h in range(1, 13)])


def test_a_series_never_negative_is_not_forecast_below_zero(page) -> None:
    published, point, bounds = page
    row = sorted([NEAR_ZERO, CROSSED]).index(NEAR_ZERO)
    assert (point[row] < 0).any(), "the model itself goes below zero"
    assert (bounds[0.95][0][row] < 0).any(), "the model itself goes below zero"
    got = _row(published, "promcast_forecast", "clipped", "near_zero", None)
    np.testing.assert_allclose(got, np.maximum(point[row], 0.0), rtol=1e-9)
    for level in LEVELS:
        lo = _row(published, "promcast_forecast_lower", "clipped", "near_zero", level)
        hi = _row(published, "promcast_forecast_upper", "clipped", "near_zero", level)
        np.testing.assert_allclose(lo, np.maximum(bounds[level][0][row], 0.0), rtol=1e-9)
        np.testing.assert_allclose(hi, np.maximum(bounds[level][1][row], 0.0), rtol=1e-9)
        assert (lo >= 0).all()
        assert (lo <= got).all()
        assert (got <= hi).all()


def test_a_series_that_was_negative_and_a_target_that_turns_it_off_keep_the_models_values(page) -> None:
    published, point, bounds = page
    for target, instance in (("clipped", "crossed"), ("raw", "crossed"), ("raw", "near_zero")):
        row = sorted([NEAR_ZERO, CROSSED]).index((("instance", instance),))
        got = _row(published, "promcast_forecast", target, instance, None)
        np.testing.assert_allclose(got, point[row], rtol=1e-9)
        assert (got < 0).any()
        for level in LEVELS:
            lo = _row(published, "promcast_forecast_lower", target, instance, level)
            np.testing.assert_allclose(lo, bounds[level][0][row], rtol=1e-9)
