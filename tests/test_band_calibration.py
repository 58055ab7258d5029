"""Each series' published bands hold their level on their own: the daemon's cycle adapts a width factor per series,
level and step from the values it scores. The coverage is counted here from the published bands and the actual
values, not read from the daemon's own gauges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.cycle.calibrate import BOUNDS, SeriesCalibration
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import Settings, TargetSettings
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster

STEP = timedelta(minutes=1)
START = datetime(2026, 3, 2, tzinfo=UTC)
H = 12
LEVELS = (0.8, 0.95)
SETTLE = 288  # steps within which a series' coverage is back at its level: a day at a 5-minute step
TOLERANCE = 0.05
WARM = 100  # the first cycle's origin: the window and the history behind it
CALM: SeriesKey = (("s", "calm"),)
HEAVY: SeriesKey = (("s", "heavy"),)


def _sine(n: int) -> np.ndarray:
    """An hourly cycle whose step-to-step changes dwarf the noise added to it: the window's own volatility, which
    the model's band is scaled by, barely sees the noise, so only the adaptation can follow the noise."""
    return 50.0 + 10.0 * np.sin(2 * np.pi * np.arange(n) / 60)


class Recorded:
    """Series one value a minute from START; ``at`` is the source's now. A series returns only the values up to it."""

    def __init__(self, series: dict[SeriesKey, np.ndarray]) -> None:
        self.series, self.at = series, START
        self.index = pd.date_range(START, periods=max(len(v) for v in series.values()), freq=STEP, tz="UTC")

    def now(self) -> datetime:
        return self.at

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        keep = (self.index >= pd.Timestamp(start)) & (self.index <= pd.Timestamp(min(end, self.at)))
        out = {}
        for key, values in self.series.items():
            index = self.index[keep][self.index[keep] < self.index[0] + len(values) * STEP]
            if len(index):
                out[key] = pd.Series(values[(index - self.index[0]) // STEP], index=index)
        return out


@pytest.fixture(scope="module")
def ar() -> Forecaster:
    """An AR model calibrated on the calm series: Gaussian noise of 0.1 on the cycle."""
    rng = np.random.default_rng(1)
    train = pd.Series(
        _sine(3000) + rng.normal(0, 0.1, 3000), pd.date_range(START - 3000 * STEP, periods=3000, freq=STEP)
    )
    return Forecaster("ar", window=24, step="60s").fit(train)


def _daemon(tmp_path: Path, model: Forecaster, source: Recorded) -> Daemon:
    target = TargetSettings(name="load", query="load", step_seconds=60, window=24, history="PT2H", levels=list(LEVELS))
    ModelStore(tmp_path, "load").publish(model)
    return Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path), source, [target])


def _published(d: Daemon, source: Recorded, cycles: range) -> dict[SeriesKey, dict[float, np.ndarray]]:
    """Per series and level, the band published at each origin of ``cycles``: (origin, H, lower/upper), NaN where
    none was."""
    out: dict[SeriesKey, dict[float, np.ndarray]] = {
        k: {lv: np.full((cycles.stop, H, 2), np.nan) for lv in LEVELS} for k in source.series
    }
    for i in cycles:
        source.at = START + i * STEP
        (result,) = d.run_once()
        assert result.ok, result.error
        fc = d.metrics.snapshot()[0]["load"]
        for row, key in enumerate(fc.keys):
            for lv in LEVELS:
                out[key][lv][i] = np.stack([fc.bounds[lv][0][row], fc.bounds[lv][1][row]], axis=-1)
    return out


def _coverage(values: np.ndarray, band: np.ndarray, origins: range) -> tuple[float, float]:
    """The share of the actual values 1..H steps after each origin inside the band published there, and the band's
    mean width."""
    at = np.asarray(origins)
    lo, hi = band[at, :, 0], band[at, :, 1]
    actual = np.stack([values[i + 1 : i + 1 + H] for i in at])
    assert np.isfinite(band[at]).all(), "a cycle published no band"
    return float(np.mean((lo <= actual) & (actual <= hi))), float(np.mean(hi - lo))


def test_coverage_returns_to_the_level_within_a_day_of_steps_after_the_noise_doubles(
    ar: Forecaster, tmp_path: Path
) -> None:
    change, count = WARM + 200, 500  # the noise doubles at ``change``; coverage is counted over ``count`` origins
    n = change + SETTLE + count + H
    rng = np.random.default_rng(2)
    values = _sine(n) + rng.normal(0, 1, n) * np.where(np.arange(n) < change, 0.1, 0.2)
    source = Recorded({CALM: values})
    bands = _published(_daemon(tmp_path, ar, source), source, range(WARM, n - H))[CALM]
    for lv in LEVELS:
        before, _ = _coverage(values, bands[lv], range(WARM, change - H))
        after, _ = _coverage(values, bands[lv], range(change, change + 30))
        settled, _ = _coverage(values, bands[lv], range(change + SETTLE, change + SETTLE + count))
        assert abs(before - lv) <= TOLERANCE, f"level {lv}: {before:.3f} before the change"
        assert after < lv - 2 * TOLERANCE, f"level {lv}: the doubled noise did not break the band ({after:.3f})"
        assert abs(settled - lv) <= TOLERANCE, f"level {lv}: {settled:.3f} from {SETTLE} steps after the change"


def test_a_calm_and_a_heavy_tailed_series_of_one_target_each_get_their_own_band(ar: Forecaster, tmp_path: Path) -> None:
    count = 400
    n = WARM + SETTLE + count + H
    rng = np.random.default_rng(3)
    calm = _sine(n) + rng.normal(0, 0.1, n)
    heavy = _sine(n) + 0.3 * rng.standard_t(3, n)  # Student-t noise, 3 degrees of freedom
    source = Recorded({CALM: calm, HEAVY: heavy})
    bands = _published(_daemon(tmp_path, ar, source), source, range(WARM, n - H))
    counted = range(WARM + SETTLE, WARM + SETTLE + count)
    for lv in LEVELS:
        calm_cov, calm_width = _coverage(calm, bands[CALM][lv], counted)
        heavy_cov, heavy_width = _coverage(heavy, bands[HEAVY][lv], counted)
        assert abs(calm_cov - lv) <= TOLERANCE, f"level {lv}: the calm series' coverage {calm_cov:.3f}"
        assert abs(heavy_cov - lv) <= TOLERANCE, f"level {lv}: the heavy-tailed series' coverage {heavy_cov:.3f}"
        assert heavy_width > 2 * calm_width, f"level {lv}: widths {heavy_width:.3f} and {calm_width:.3f}"


def test_a_wider_levels_band_contains_the_narrower_ones_whatever_the_factors() -> None:
    """Misses at 0.8 and hits at 0.95 drive the 0.8 factor to its top and the 0.95 factor to its bottom: scaled on
    its own, the 0.8 band would be 10,000 times wider than the 0.95 band's. The 0.95 band still holds the 0.8 band
    and keeps its own scaled gap above it."""
    a, b = (("s", "a"),), (("s", "b"),)
    calibration = SeriesCalibration(LEVELS, H, eta=0.5)
    drive = np.stack([np.full(H, 1.0), np.full(H, -1.0)])  # per level: a miss share above, below the target
    for _ in range(100):
        calibration.learn([a], drive[None])
    k = calibration.factors([a, b])
    np.testing.assert_allclose(k[0], [[BOUNDS[1]] * H, [BOUNDS[0]] * H], rtol=1e-9)
    np.testing.assert_array_equal(k[1], np.ones((2, H)))  # a series never scored keeps the model's band
    point = np.array([[10.0] * H, [20.0] * H])
    model = {0.8: (point - 1.0, point + 1.0), 0.95: (point - 2.0, point + 2.0)}
    out = calibration.apply([a, b], point, model)
    lo80, hi80 = out[0.8]
    lo95, hi95 = out[0.95]
    np.testing.assert_allclose(hi80[0] - point[0], 100.0)  # 1 x 100
    np.testing.assert_allclose(hi95[0] - point[0], 100.0 + 0.01)  # above it by its own gap 1 x 0.01
    np.testing.assert_allclose(point[0] - lo95[0], 100.0 + 0.01)
    assert (lo95 < lo80).all()
    assert (hi80 < hi95).all()
    for lv in LEVELS:  # the series never scored: the model's bands as they were
        np.testing.assert_array_equal(out[lv][0][1], model[lv][0][1])
        np.testing.assert_array_equal(out[lv][1][1], model[lv][1][1])


def test_a_series_that_vanishes_leaves_no_state_behind(ar: Forecaster, tmp_path: Path) -> None:
    n = WARM + 40
    values = _sine(n + H)
    source = Recorded({CALM: values, HEAVY: values[: WARM + 20]})  # the second series stops after 20 cycles
    d = _daemon(tmp_path, ar, source)
    calibration = d.jobs["load"].scorer.quality.calibration
    _published(d, source, range(WARM, WARM + 20))
    assert len(calibration) == 2
    _published(d, source, range(WARM + 20, n))
    assert len(calibration) == 1
    assert not np.array_equal(calibration.factors([CALM]), np.ones((1, len(LEVELS), H)))  # the other one learnt
