"""The burst replay reads the bands the daemon publishes (each series' own widths), counts the labelled windows it
finds and its false positives a day, and a heavy-tailed series does not fire on its every large value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.cycle.bursts import BurstParams
from promcast.daemon.offline.bursts import LEVEL, calibrated, run_bursts, window_hits
from promcast.forecaster.data import regularise

STEP = pd.Timedelta(minutes=5)


def test_window_hits_counts_the_windows_found_and_the_false_positives_a_day() -> None:
    index = pd.date_range("2026-01-01", periods=577, freq=STEP, tz="UTC")  # exactly two days from step 0
    detections = np.zeros(577, dtype=bool)
    detections[[10, 100, 300, 301]] = True
    windows = [[str(index[8]), str(index[20])], [str(index[290]), str(index[310])], [str(index[400]), str(index[410])]]
    hits = window_hits(index, detections, windows, start=0)
    assert (hits.found, hits.windows, hits.false) == (2, 3, 1)  # step 100 lies in no window
    assert hits.false_per_day == 0.5  # one false positive over two days


def test_the_replayed_band_widens_to_the_series_own_errors() -> None:
    """A model band of +-1 around 0 for errors of spread 5: the published 0.95 band learns the series' width."""
    rng = np.random.default_rng(0)
    count, horizon = 3000, 4
    values = rng.normal(0.0, 5.0, count + horizon)
    point = np.zeros((count, horizon))
    lower, upper = calibrated(values, 0, point, point - 1.0, point + 1.0, eta=0.05)
    later = slice(count // 2, count)
    inside = (lower[later, 0] <= values[later]) & (values[later] <= upper[later, 0])  # step 1 of origin o is o
    assert inside.mean() == pytest.approx(LEVEL, abs=0.03)
    assert np.median(upper[later, 0]) == pytest.approx(1.96 * 5.0, rel=0.25)


def _heavy_tailed(seed: int, bursts: tuple[int, ...] = ()) -> pd.Series:
    """Ten days at 5 minutes: a daily cycle and Student-t noise whose spread is 5 times larger every other half
    day after NAB's probationary period; ``bursts`` adds 300 for 6 steps at each of those steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(288 * 10)
    spread = np.where((t // 144) % 2 == 1, 5.0, 1.0)
    spread[:432] = 1.0
    v = 100 + 30 * np.sin(2 * np.pi * t / 288) + 2.0 * spread * rng.standard_t(3, len(t))
    for b in bursts:
        v[b : b + 6] += 300
    return pd.Series(v, index=pd.date_range("2026-01-01", periods=len(t), freq=STEP, tz="UTC"))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_heavy_tailed_series_fires_at_most_once_a_day_yet_flags_each_injected_burst(seed: int) -> None:
    calm = _heavy_tailed(seed)
    r = run_bursts("calm", regularise(calm, None, max_gap=None), BurstParams(), [], fast=True)
    assert window_hits(r.series.index, r.series.onsets, [], r.series.start).false_per_day <= 1.0
    at = (1300, 1900, 2500)
    bursty = _heavy_tailed(seed, at)
    windows = [[str(bursty.index[b - 2]), str(bursty.index[b + 8])] for b in at]
    r = run_bursts("bursty", regularise(bursty, None, max_gap=None), BurstParams(), windows, fast=True)
    assert r.hits is not None
    assert r.hits["promcast"].found == 3
