"""The 0.8 and 0.95 bands stay distinct and nested however far the online adaptation moves them: the quality
tracker's adapted levels, the calibration's lookup, and the bands the daemon publishes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.cycle.quality import LEVEL_RANGE, SEPARATION, QualityTracker
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import Settings, TargetSettings
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster

from .support.http import samples, scrape

STEP = pd.Timedelta("60s")
H = 12
LEVELS = (0.8, 0.95)
ORIGIN = pd.Timestamp("2024-05-01 12:00", tz="UTC")


def _driven(inside: bool, levels: tuple[float, ...] = LEVELS, series: int = 20) -> QualityTracker:
    """A tracker whose every scored value fell inside every band (``inside``) or outside all of them."""
    tracker = QualityTracker(STEP, H, levels, window=288, gamma=0.05)
    keys = [(("instance", str(i)),) for i in range(series)]
    values = np.zeros((series, H))
    width = 1.0 if inside else 1e-3
    tracker.record(ORIGIN, keys, values, np.zeros(series), {lv: (values - width, values + width) for lv in levels})
    index = pd.date_range(ORIGIN + STEP, periods=H, freq=STEP)
    actual = 0.0 if inside else 5.0
    tracker.observe({k: pd.Series(actual, index=index) for k in keys})
    return tracker


@pytest.mark.parametrize("inside", [False, True], ids=["misses", "hits"])
def test_adapted_levels_stay_ordered_and_apart_at_the_clip(inside: bool) -> None:
    tracker = _driven(inside)
    alphas = {lv: 1.0 - lv for lv in LEVELS}
    # The premise: every level adapted past the clip on the same side (misses widen, hits narrow).
    assert (tracker.snapshot().coverage[0.8] == 1.0) is inside
    effective = tracker.effective_levels()
    assert list(effective) == list(LEVELS)
    low, high = LEVEL_RANGE
    got = list(effective.values())
    assert all(low <= e <= high for e in got), effective
    assert got[1] - got[0] >= SEPARATION - 1e-12, f"{effective} (alphas started at {alphas})"
    assert got == ([high - SEPARATION, high] if not inside else [low, low + SEPARATION])


def test_levels_that_cross_are_put_back_in_order() -> None:
    tracker = _driven(False, levels=(0.5, 0.8, 0.95), series=3)  # misses: 0.5 adapts fastest, past the others
    got = list(tracker.effective_levels().values())
    assert all(b - a >= SEPARATION - 1e-12 for a, b in itertools.pairwise(got)), got


@pytest.fixture(scope="module")
def ar() -> Forecaster:
    """A real AR model whose calibration holds 109 windows: its top grid points read one order statistic."""
    rng = np.random.default_rng(0)
    return Forecaster("ar", window=24, step="60s").fit(300 - 0.5 * np.arange(600) + rng.normal(0, 0.1, 600))


@pytest.mark.parametrize("inside", [False, True], ids=["misses", "hits"])
def test_the_forecasters_bands_at_the_adapted_levels_differ_and_nest(ar: Forecaster, inside: bool) -> None:
    effective = _driven(inside).effective_levels()
    lo_level, hi_level = effective[0.8], effective[0.95]
    windows = np.stack([50.0 + 0.5 * np.arange(24)[::-1], 80.0 + np.sin(np.arange(24))])
    point, bounds = ar.predict_interval(windows, (lo_level, hi_level))
    lo80, hi80 = bounds[lo_level]
    lo95, hi95 = bounds[hi_level]
    assert (lo95 <= lo80).all()
    assert (lo80 <= point).all()
    assert (point <= hi80).all()
    assert (hi80 <= hi95).all()
    assert (lo95 < lo80).all(), "the two bands are one"
    assert (hi80 < hi95).all(), "the two bands are one"


def test_two_levels_on_one_order_statistic_still_give_two_bands(ar: Forecaster) -> None:
    cal = ar.calibration
    assert cal is not None
    # The premise: the stored grid reads the same (largest) score at both levels.
    np.testing.assert_array_equal(cal.width(0.985), cal.width(0.995))
    widths = cal.widths((0.985, 0.995))
    assert (widths[0.995] > widths[0.985]).all()
    np.testing.assert_array_equal(widths[0.985], cal.width(0.985))  # the narrower one reads the grid as before


NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Spiking:
    """A Source of falling series whose next values jump far outside every band: each scored step is a miss."""

    def __init__(self, series: int) -> None:
        index = pd.date_range(end=NOW, periods=60, freq="1min")
        self.data = {
            (("instance", str(i)),): pd.Series(100.0 + i + 0.5 * np.arange(60)[::-1], index) for i in range(series)
        }
        self.moment = NOW

    def now(self) -> datetime:
        return self.moment

    def advance(self) -> None:
        self.moment += timedelta(minutes=1)
        for key, s in self.data.items():
            s.loc[pd.Timestamp(self.moment)] = s.iloc[-1] + 500.0
            self.data[key] = s

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        return {k: s[(s.index >= start) & (s.index <= end)] for k, s in self.data.items()}


def test_the_daemon_publishes_two_nested_bands_after_a_burst_of_misses(ar: Forecaster, tmp_path: Path) -> None:
    target = TargetSettings(
        name="load",
        query="load",
        window=24,
        history=timedelta(days=1),
        aci_gamma=0.1,
        clip_negative=False,
        bursts={"enabled": False},  # misses this far out are bursts, which leave the adaptation alone
    )
    ModelStore(tmp_path / "models", "load").publish(ar)
    source = Spiking(series=20)
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models"), source, [target])
    for _ in range(3):  # each later cycle scores the one before as misses, then forecasts at the adapted levels
        assert all(r.ok for r in daemon.run_once())
        source.advance()
    effective = daemon.jobs["load"].scorer.quality.effective_levels()
    assert effective[0.8] > 0.95, f"the misses did not drive the levels up: {effective}"
    text = scrape(daemon)
    band: dict[tuple[str, str, str, int], float] = {}
    for family in ("promcast_forecast_lower", "promcast_forecast_upper"):
        for labels, value in samples(text, family):
            band[(family, labels["level"], labels["instance"], int(labels["h"]))] = value
    assert len(band) == 2 * 2 * 20 * H
    for i in range(20):
        for h in range(1, H + 1):
            lo80, lo95 = (band[("promcast_forecast_lower", lv, str(i), h)] for lv in ("0.8", "0.95"))
            hi80, hi95 = (band[("promcast_forecast_upper", lv, str(i), h)] for lv in ("0.8", "0.95"))
            assert lo95 < lo80 <= hi80 < hi95, (i, h, lo95, lo80, hi80, hi95)
