"""Per-series band calibration: each series' published band at each level tracks its own coverage.

The model's calibration gives every series the same band in units of its window's volatility; one series may be
calmer than the validation windows, another heavy-tailed. So each series keeps, per level and horizon step, a
width factor k on the band's half-widths around the point forecast, in log space, starting at 1 (the model's
calibration). Each newly scored value moves it as adaptive conformal inference does (Gibbs and Candès 2021):
``log k += eta * (miss - (1 - level))``: a miss widens by ``eta * level``, a hit narrows by ``eta * (1 - level)``,
so k settles where the share of misses is ``1 - level``. A burst moves it by at most ``eta`` per scored value,
however large. k stays within ``BOUNDS``.

A wider level's band must contain a narrower level's after scaling: the wider one keeps at least its scaled
model gap above the narrower one. State is one small array per series; series that vanish are forgotten.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

import numpy as np

from promcast.daemon.cycle.bands import Bounds
from promcast.daemon.types import SeriesKey

__all__ = ["BOUNDS", "SeriesCalibration"]

BOUNDS = (0.01, 100.0)  # the width factor's range: two orders of magnitude either way of the model's band


class SeriesCalibration:
    """Width factors (level, step) per series, adapted online from the published bands' hits and misses."""

    def __init__(self, levels: Sequence[float], horizon: int, eta: float) -> None:
        self.levels = tuple(sorted(levels))
        self.horizon, self.eta = horizon, eta
        self._lock = threading.Lock()
        self._rows: dict[SeriesKey, int] = {}  # series -> its row of ``_log``
        self._log = np.zeros((0, len(self.levels), horizon))  # log width factors, (series, level, step)

    def __len__(self) -> int:
        """The series kept."""
        return len(self._rows)

    def factors(self, keys: Sequence[SeriesKey]) -> np.ndarray:
        """(S, levels, H) width factors of ``keys``; 1 for a series not seen yet."""
        with self._lock:
            rows = np.array([self._rows.get(k, -1) for k in keys], dtype=np.int64)
            out = np.zeros((len(keys), len(self.levels), self.horizon))
            known = rows >= 0
            out[known] = self._log[rows[known]]
        return np.exp(out)

    def learn(self, keys: Sequence[SeriesKey], excess: np.ndarray) -> None:
        """Fold one cycle's scoring in: ``excess`` (S, levels, H) is, per series, level and step, the misses minus
        the level's miss share, summed over the values scored now (0 where none was)."""
        lo, hi = math.log(BOUNDS[0]), math.log(BOUNDS[1])
        with self._lock:
            new = [k for k in keys if k not in self._rows]
            if new:
                self._rows.update({k: len(self._rows) + i for i, k in enumerate(new)})
                self._log = np.concatenate([self._log, np.zeros((len(new), *self._log.shape[1:]))])
            rows = np.array([self._rows[k] for k in keys], dtype=np.int64)
            self._log[rows] = np.clip(self._log[rows] + self.eta * excess, lo, hi)

    def forget(self, present: AbstractSet[SeriesKey]) -> None:
        """Drop the factors of series no longer returned."""
        with self._lock:
            kept = [k for k in self._rows if k in present]
            if len(kept) == len(self._rows):
                return
            self._log = self._log[[self._rows[k] for k in kept]]
            self._rows = {k: i for i, k in enumerate(kept)}

    def apply(self, keys: Sequence[SeriesKey], values: np.ndarray, bounds: Bounds) -> Bounds:
        """``bounds`` (level -> (S, H) lower, upper around ``values``) with each series' half-widths scaled by
        its factors, nested: a wider level's half-width is at least the narrower one's scaled half-width plus
        its own scaled gap above it. Levels without factors pass through."""
        levels = [lv for lv in self.levels if lv in bounds]
        if not levels:
            return bounds
        k = self.factors(keys)
        out = dict(bounds)
        below: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # scaled and model halves
        for lv in levels:
            i = self.levels.index(lv)
            lo, hi = bounds[lv]
            down, up = values - lo, hi - values  # the model's half-widths below and above the point
            sdown, sup = k[:, i] * down, k[:, i] * up
            if below is not None:
                bdown, bup, mdown, mup = below
                sdown = np.maximum(sdown, bdown + k[:, i] * np.maximum(down - mdown, 0.0))
                sup = np.maximum(sup, bup + k[:, i] * np.maximum(up - mup, 0.0))
            out[lv] = (values - sdown, values + sup)
            below = (sdown, sup, down, up)
        return out
