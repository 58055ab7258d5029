"""The 0.8 and 0.95 bands stay distinct and nested however far the online adaptation moves them: the calibration's
lookup, each series' width factors, and the bands the daemon publishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.cycle.calibrate import SeriesCalibration
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import Settings, TargetSettings
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster

from .support.http import samples, scrape

H = 12
LEVELS = (0.8, 0.95)


def _driven(inside: bool, series: int = 2) -> SeriesCalibration:
    """Width factors of series whose every scored value fell inside every band (``inside``) or outside all of them,
    long enough to reach the factors' bounds."""
    calibration = SeriesCalibration(LEVELS, H, eta=0.5)
    keys = [(("instance", str(i)),) for i in range(series)]
    excess = (0.0 if inside else 1.0) - (1.0 - np.array(LEVELS))  # per level: the miss minus the level's share
    for _ in range(100):
        calibration.learn(keys, np.broadcast_to(excess[None, :, None], (series, len(LEVELS), H)))
    return calibration


@pytest.fixture(scope="module")
def ar() -> Forecaster:
    """A real AR model whose calibration holds 109 windows: its top grid points read one order statistic."""
    rng = np.random.default_rng(0)
    return Forecaster("ar", window=24, step="60s").fit(300 - 0.5 * np.arange(600) + rng.normal(0, 0.1, 600))


@pytest.mark.parametrize("inside", [False, True], ids=["misses", "hits"])
def test_the_forecasters_bands_at_the_adapted_widths_differ_and_nest(ar: Forecaster, inside: bool) -> None:
    calibration = _driven(inside)
    windows = np.stack([50.0 + 0.5 * np.arange(24)[::-1], 80.0 + np.sin(np.arange(24))])
    point, bounds = ar.predict_interval(windows, LEVELS)
    keys = [(("instance", str(i)),) for i in range(2)]
    assert (calibration.factors(keys) != 1.0).all()  # the premise: every factor moved, to the same bound
    bounds = calibration.apply(keys, point, bounds)
    lo80, hi80 = bounds[0.8]
    lo95, hi95 = bounds[0.95]
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
    )
    ModelStore(tmp_path / "models", "load").publish(ar)
    source = Spiking(series=20)
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models"), source, [target])
    for _ in range(3):  # each later cycle scores the one before as misses, then forecasts at the adapted widths
        assert all(r.ok for r in daemon.run_once())
        source.advance()
    factors = daemon.jobs["load"].scorer.quality.calibration.factors(list(source.data))
    assert (factors[:, :, 0] > 1.0).all(), f"the misses did not widen the bands: {factors[:, :, 0]}"
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
