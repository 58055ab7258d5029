"""Live forecast quality: keep the forecasts made, score them when the actual values arrive.

Per target it tracks, over the last ``window`` scored forecasts of each horizon step: the MAE, the naive
forecast's MAE (the last value at the origin, repeated) and, per interval level, how often the actual
value fell inside the band. It also adapts each level online (adaptive conformal inference, Gibbs and
Candès 2021): a miss widens the next bands a little, a hit narrows them, so coverage tracks drift.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .source import SeriesKey

__all__ = ["QualitySnapshot", "QualityTracker"]


@dataclass(frozen=True)
class QualitySnapshot:
    mae: list[float | None]  # per horizon step 1..H; None until a forecast of that step was scored
    naive_mae: list[float | None]
    coverage: dict[float, float | None]  # nominal level -> share of actual values inside the band
    scored: int  # forecasts of step 1 scored so far (within the window)

    @property
    def skill(self) -> float | None:
        """1 - MAE_model / MAE_naive over every step scored; positive when the model beats naive."""
        pairs = [(m, n) for m, n in zip(self.mae, self.naive_mae, strict=True) if m is not None and n]
        if not pairs:
            return None
        return 1.0 - sum(m for m, _ in pairs) / sum(n for _, n in pairs)


@dataclass
class _Pending:
    values: np.ndarray  # (H,)
    lower: dict[float, np.ndarray]  # nominal level -> (H,)
    upper: dict[float, np.ndarray]
    naive: float
    scored: np.ndarray  # (H,) bool


class QualityTracker:
    def __init__(self, step: pd.Timedelta, horizon: int, levels: tuple[float, ...], window: int, gamma: float):
        self.step, self.horizon, self.levels, self.gamma = pd.Timedelta(step), horizon, levels, gamma
        self._lock = threading.Lock()
        self._pending: dict[SeriesKey, dict[pd.Timestamp, _Pending]] = {}
        self._err = [deque[float](maxlen=window) for _ in range(horizon)]
        self._naive = [deque[float](maxlen=window) for _ in range(horizon)]
        self._hits = {lv: deque[float](maxlen=window * horizon) for lv in levels}
        self._alpha = {lv: 1.0 - lv for lv in levels}  # adapted miss rate per nominal level

    def effective_levels(self) -> dict[float, float]:
        """Nominal level -> the level to ask the calibration for now (adapted, kept within [0.5, 0.995])."""
        with self._lock:
            return {lv: float(np.clip(1.0 - a, 0.5, 0.995)) for lv, a in self._alpha.items()}

    def record(
        self,
        origin: pd.Timestamp,
        keys: list[SeriesKey],
        values: np.ndarray,
        last: np.ndarray,
        bounds: dict[float, tuple[np.ndarray, np.ndarray]],
    ) -> None:
        """Keep this cycle's forecasts (S, H), the last inputs (S,) and bounds by nominal level."""
        with self._lock:
            for i, key in enumerate(keys):
                lower = {lv: lo[i] for lv, (lo, _) in bounds.items()}
                upper = {lv: hi[i] for lv, (_, hi) in bounds.items()}
                pending = _Pending(values[i], lower, upper, float(last[i]), np.zeros(self.horizon, bool))
                self._pending.setdefault(key, {})[origin] = pending

    def observe(self, actuals: dict[SeriesKey, pd.Series]) -> None:
        """Score every kept forecast whose target time has an actual value in ``actuals``."""
        with self._lock:
            for key in list(self._pending):
                series = actuals.get(key)
                if series is None or series.empty:
                    continue
                values = dict(zip(series.index, series.to_numpy(dtype=float), strict=True))
                oldest = series.index[-1] - 2 * self.horizon * self.step
                for origin in list(self._pending[key]):
                    self._score(self._pending[key][origin], origin, values)
                    if self._pending[key][origin].scored.all() or origin < oldest:
                        del self._pending[key][origin]
                if not self._pending[key]:
                    del self._pending[key]

    def _score(self, p: _Pending, origin: pd.Timestamp, values: dict[pd.Timestamp, float]) -> None:
        for h in np.flatnonzero(~p.scored):
            actual = values.get(origin + (int(h) + 1) * self.step)
            if actual is None:
                continue
            p.scored[h] = True
            self._err[h].append(abs(actual - float(p.values[h])))
            self._naive[h].append(abs(actual - p.naive))
            for lv in self.levels:
                if lv in p.lower:
                    miss = not (p.lower[lv][h] <= actual <= p.upper[lv][h])
                    self._hits[lv].append(0.0 if miss else 1.0)
                    # ACI: alpha <- alpha + gamma (target miss rate - observed miss)
                    self._alpha[lv] += self.gamma * ((1.0 - lv) - float(miss))

    def snapshot(self) -> QualitySnapshot:
        with self._lock:
            mae = [float(np.mean(d)) if d else None for d in self._err]
            naive = [float(np.mean(d)) if d else None for d in self._naive]
            cov = {lv: (float(np.mean(d)) if d else None) for lv, d in self._hits.items()}
            return QualitySnapshot(mae, naive, cov, len(self._err[0]))
