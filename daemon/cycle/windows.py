"""Input windows of every series of one target, built in one vectorised pass on the target's step grid.

The grid is the cycle's: its last point is the cycle's end, its points are one step apart. A sample belongs to the
grid point at or after it (the point whose step it falls in, as Prometheus's range queries place samples), and
samples that share a point are averaged, as ``forecaster.data.regularise`` does for training.

Per series:
- its **origin** is the grid point of its last sample: its window ends there, and its forecast's step h predicts
  origin + h steps. A series whose samples lag has an older origin than the cycle's end;
- a series whose last sample is more than ``max_lag`` steps before the end has **stopped**: it is left out, so that
  no forecast with steps already past is published. One with fewer than ``window`` steps between its first and
  last sample is skipped;
- **the gap policy**: every missing point inside the window is filled by linear interpolation between the real
  samples around it, whatever the gap's length, and counted as imputed. A window that bridges a gap longer than
  ``max_gap`` steps (an outage of the source or of Prometheus) is flagged, so that the job widens its interval and
  says so; the series is forecast from the first cycle after the outage instead of waiting until the gap has left
  the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from promcast.daemon.sources.samples import Samples, as_samples
from promcast.daemon.types import SeriesKey

__all__ = ["Windows", "build_windows"]


@dataclass(frozen=True)
class Windows:
    keys: list[SeriesKey]  # sorted: the batch order
    values: np.ndarray  # (S, W) float64, finite
    origins: np.ndarray  # (S,) int64 ns: the time of each series' last input step
    filled: np.ndarray  # (S,) int: points of each window with no sample of their own (interpolated)
    long_gap: np.ndarray  # (S,) bool: the window bridges a gap longer than max_gap steps
    skipped: list[tuple[SeriesKey, str]]  # series left out for their values, with the reason
    stopped: list[SeriesKey] = field(default_factory=list)  # series with no sample in the last max_lag steps

    def subset(self, rows: list[int]) -> Windows:
        """The windows of ``rows`` only (after some series could not be forecast)."""
        return Windows(
            [self.keys[i] for i in rows],
            self.values[rows],
            self.origins[rows],
            self.filled[rows],
            self.long_gap[rows],
            self.skipped,
            self.stopped,
        )

    @property
    def imputed_ratio(self) -> float:
        return float(self.filled.sum()) / self.values.size if self.values.size else 0.0


def build_windows(
    data: Mapping[SeriesKey, Samples | pd.Series],
    end: datetime,
    step: timedelta,
    window: int,
    max_gap: int,
    grid: int,
    max_lag: int,
) -> Windows:
    """The windows of ``data`` on the ``grid`` points that end at ``end`` (``grid`` >= window + max_gap)."""
    step_ns = round(step.total_seconds() * 1e9)
    end_ns = pd.Timestamp(end).value
    g0 = end_ns - (grid - 1) * step_ns
    keys = sorted(data)
    skipped: list[tuple[SeriesKey, str]] = []
    stopped: list[SeriesKey] = []
    times, values, lengths = [], [], []
    for key in keys:
        samples = as_samples(data[key])
        times.append(samples.times)
        values.append(samples.values)
        lengths.append(len(samples))
    n = len(keys)
    t = np.concatenate(times) if times else np.empty(0, np.int64)
    v = np.concatenate(values) if values else np.empty(0)
    row = np.repeat(np.arange(n), lengths)
    finite = np.isfinite(v)
    bad = np.bincount(row[~finite], minlength=n) > 0
    slot = -((g0 - t) // step_ns)  # the grid point at or after each sample
    keep = (slot >= 0) & (slot < grid) & finite
    flat = row[keep] * grid + slot[keep]
    counts = np.bincount(flat, minlength=n * grid).reshape(n, grid)
    sums = np.bincount(flat, weights=v[keep], minlength=n * grid).reshape(n, grid)
    present = counts > 0
    matrix = np.divide(sums, counts, out=np.full((n, grid), np.nan), where=present)

    cols = np.arange(grid)
    any_sample = np.asarray(present.any(axis=1), dtype=bool)
    last = grid - 1 - np.argmax(present[:, ::-1], axis=1)
    first = np.argmax(present, axis=1)
    ok = np.ones(n, bool)
    for i in range(n):
        reason = None
        if not bad[i] and (not any_sample[i] or grid - 1 - last[i] > max_lag):
            ok[i] = False
            stopped.append(keys[i])
            continue
        if bad[i]:
            reason = "the series holds NaN or infinite values"
        elif last[i] - first[i] + 1 < window:
            reason = f"need {window} points, got {int(last[i] - first[i] + 1)}"
        if reason is not None:
            ok[i] = False
            skipped.append((keys[i], reason))
    rows = np.flatnonzero(ok)
    m, p, last = matrix[rows], present[rows], last[rows]
    # The real sample before and after each point (itself where it has one): linear interpolation across gaps.
    prev = np.maximum.accumulate(np.where(p, cols, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(p, cols, grid)[:, ::-1], axis=1)[:, ::-1]
    take = (last[:, None] - window + 1) + np.arange(window)  # (S, W) grid columns of each window
    r = np.arange(len(rows))[:, None]
    lo, hi = prev[r, take], nxt[r, take]  # inside a window both exist: it starts at or after the first sample
    v_lo, v_hi = m[r, lo], m[r, hi]
    frac = np.divide(take - lo, hi - lo, out=np.zeros(take.shape), where=hi > lo)
    windows = np.where(p[r, take], m[r, take], v_lo + (v_hi - v_lo) * frac)
    gap = hi - lo - 1  # the length of the gap each filled point sits in
    missing = ~p[r, take]
    return Windows(
        keys=[keys[i] for i in rows],
        values=windows,
        origins=g0 + last.astype(np.int64) * step_ns,
        filled=missing.sum(axis=1),
        long_gap=(missing & (gap > max_gap)).any(axis=1),
        skipped=skipped,
        stopped=stopped,
    )
