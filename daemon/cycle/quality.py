"""Live forecast quality: keep the forecasts made, score them when the actual values arrive.

Per target it tracks, over the last ``window`` scored forecasts of each horizon step: the MAE, the naive
forecast's MAE (the last value at the origin, repeated) and, per interval level, how often the actual
value fell inside the band. Each scored value also adapts its own series' band widths (daemon/cycle/calibrate.py):
a miss widens that series' next bands a little, a hit narrows them, so each series' coverage tracks its level.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
import pandas as pd

from promcast.daemon.cycle.bursts import combine, excess
from promcast.daemon.cycle.calibrate import SeriesCalibration
from promcast.daemon.cycle.guard import MODEL
from promcast.daemon.sources.samples import Samples, as_samples
from promcast.daemon.types import QualitySnapshot, SeriesKey

__all__ = ["QualitySnapshot", "QualityTracker", "Scored"]


@dataclass(frozen=True)
class Scored:
    """What one ``observe`` scored, for the cycle to hand to the guard and the burst detector."""

    errors: dict[SeriesKey, dict[str, np.ndarray]]  # per series scored: source -> mean new absolute error per step
    burst_keys: list[SeriesKey]  # the series with burst scores, in the rows of ``burst_scores``
    burst_scores: np.ndarray  # (series, times): each actual value's burst score, NaN where none was scored


NOTHING = Scored({}, [], np.empty((0, 0)))


class _Rolling:
    """The last ``size`` values pushed, in a preallocated array: a rolling window that allocates nothing per
    value (a deque of Python floats would scatter long-lived objects across the heap every cycle)."""

    def __init__(self, size: int) -> None:
        self._buf = np.empty(size)
        self._next = 0  # values pushed so far

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float).ravel()[-len(self._buf) :]
        at = (self._next + np.arange(len(values))) % len(self._buf)
        self._buf[at] = values
        self._next += len(values)

    def __len__(self) -> int:
        return min(self._next, len(self._buf))

    def mean(self) -> float | None:
        return float(self._buf[: len(self)].mean()) if len(self) else None


@dataclass
class _Batch:
    """One cycle's forecasts, kept as arrays until every step is scored or they grow too old."""

    keys: tuple[SeriesKey, ...]
    origins: np.ndarray  # (S,) ns: each series' last input step; step h forecasts origin + h steps
    values: np.ndarray  # (S, H)
    naive: np.ndarray  # (S,) the last input value at the origin
    bounds: dict[float, tuple[np.ndarray, np.ndarray]]  # nominal level -> (S, H) lower, upper
    scored: np.ndarray  # (S, H) bool
    fallbacks: dict[str, np.ndarray]  # the guard's fallbacks: name -> (S, H)


def _actuals_at(actuals: Mapping[SeriesKey, Samples], times: np.ndarray) -> tuple[dict[SeriesKey, int], np.ndarray]:
    """Row of each series, and a (series, times) matrix of its values at ``times`` (ns), NaN where it has none."""
    rows: dict[SeriesKey, int] = {}
    out = np.full((len(actuals), len(times)), np.nan)
    for i, (key, samples) in enumerate(actuals.items()):
        rows[key] = i
        if not len(samples):
            continue
        index = samples.times
        pos = np.minimum(np.searchsorted(index, times), len(index) - 1)
        hit = index[pos] == times
        out[i, hit] = samples.values[pos[hit]]
    return rows, out


class QualityTracker:
    """Scores the model's own forecasts (also while the guard publishes a fallback's) and returns, per series, the
    model's and each fallback's errors and each actual value's burst score; the intervals scored are the published
    ones, and they adapt each series' band widths (``calibration``, steps of ``gamma``). With ``score_bursts`` it
    scores each actual value's burst score."""

    def __init__(
        self,
        step: pd.Timedelta,
        horizon: int,
        levels: tuple[float, ...],
        window: int,
        gamma: float,
        score_bursts: bool = False,
    ):
        self.step, self.horizon, self.levels = pd.Timedelta(step), horizon, levels
        self.score_bursts = score_bursts
        self._lock = threading.Lock()
        self._pending: dict[pd.Timestamp, _Batch] = {}  # origin -> that cycle's forecasts
        self._err = [_Rolling(window) for _ in range(horizon)]
        self._naive = [_Rolling(window) for _ in range(horizon)]
        self._hits = {lv: _Rolling(window * horizon) for lv in levels}
        self.calibration = SeriesCalibration(levels, horizon, gamma)

    def forget(self, present: AbstractSet[SeriesKey]) -> None:
        """Drop the band widths of series no longer returned."""
        self.calibration.forget(present)

    def record(
        self,
        origin: pd.Timestamp,
        keys: list[SeriesKey],
        values: np.ndarray,
        last: np.ndarray,
        bounds: dict[float, tuple[np.ndarray, np.ndarray]],
        origins: np.ndarray | None = None,
        fallbacks: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Keep this cycle's model forecasts (S, H), the last inputs (S,), bounds by nominal level, and the guard's
        fallback forecasts (S, H) by name.

        ``origin`` is the cycle's end; ``origins`` (ns) each series' own last input step, default the end."""
        last = np.array(last, dtype=float)  # a copy: a view would keep the whole (S, W) batch of windows alive
        at = np.full(len(keys), pd.Timestamp(origin).value) if origins is None else np.asarray(origins, np.int64)
        batch = _Batch(tuple(keys), at, values, last, dict(bounds), np.zeros(values.shape, bool), dict(fallbacks or {}))
        with self._lock:
            self._pending[pd.Timestamp(origin)] = batch

    def observe(self, data: Mapping[SeriesKey, Samples | pd.Series]) -> Scored:
        """Score every kept forecast whose target time has an actual value in ``data``."""
        actuals = {k: as_samples(v) for k, v in data.items()}
        errors: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # source -> (sum, count), (actual series, H) each
        with self._lock:
            if not self._pending or not actuals:
                return NOTHING
            steps = np.arange(1, self.horizon + 1) * self.step.value
            origins = sorted(self._pending)
            times = {o: self._pending[o].origins[:, None] + steps for o in origins}  # (S, H) ns per batch
            wanted = np.unique(np.concatenate([t.ravel() for t in times.values()]))
            rows, matrix = _actuals_at(actuals, wanted)
            # Per actual value and horizon step, the excess of the forecast made that many steps before it.
            burst = np.full((*matrix.shape, self.horizon), np.nan) if self.score_bursts else None
            latest = max((int(s.times[-1]) for s in actuals.values() if len(s)), default=None)
            # Per actual series, level and step: the misses minus the level's miss share, of the values scored now.
            over_share = np.zeros((len(rows), len(self.calibration.levels), self.horizon))
            oldest = pd.Timestamp(latest, tz="UTC") - 2 * self.horizon * self.step if latest is not None else None
            for origin in origins:
                batch = self._pending[origin]
                cols = np.searchsorted(wanted, times[origin])
                at = np.array([rows.get(k, -1) for k in batch.keys])
                actual = np.where((at >= 0)[:, None], matrix[np.maximum(at, 0)[:, None], cols], np.nan)
                self._score(batch, actual, at, len(rows), errors, over_share, burst, cols)
                if batch.scored.all() or (oldest is not None and origin < oldest):
                    del self._pending[origin]
            self.calibration.learn(list(rows), over_share)
            burst_keys, burst_scores = [], NOTHING.burst_scores
            if burst is not None:
                scores = combine(burst)  # (series, times), NaN where nothing was scored
                scored = np.isfinite(scores).any(axis=1)
                if scored.any():
                    burst_keys, burst_scores = [k for k, row in rows.items() if scored[row]], scores[scored]
        return Scored(self._mean_errors(list(rows), errors), burst_keys, burst_scores)

    def _score(
        self,
        b: _Batch,
        actual: np.ndarray,
        at: np.ndarray,
        series: int,
        errors: dict[str, tuple[np.ndarray, np.ndarray]],
        over_share: np.ndarray,
        burst: np.ndarray | None = None,
        cols: np.ndarray | None = None,
    ) -> None:
        new = ~b.scored & np.isfinite(actual)  # (S, H)
        if not new.any():
            return
        b.scored |= new
        if burst is not None and cols is not None and b.bounds:
            lo, hi = b.bounds[max(b.bounds)]  # the widest band
            ex = excess(actual, lo, hi)
            rows = np.broadcast_to(at[:, None], new.shape)
            steps = np.broadcast_to(np.arange(self.horizon)[None, :], new.shape)
            burst[rows[new], cols[new], steps[new]] = ex[new]
        if b.fallbacks:  # the guard's fallbacks are kept only where the guard is on
            for name in (MODEL, *b.fallbacks):
                if name not in errors:
                    errors[name] = (np.zeros((series, self.horizon)), np.zeros((series, self.horizon)))
            self._collect(b, actual, new, at, errors)
        for h in range(self.horizon):
            rows = new[:, h]
            if rows.any():
                a = actual[rows, h]
                self._err[h].extend(np.abs(a - b.values[rows, h]))
                self._naive[h].extend(np.abs(a - b.naive[rows]))
        seen = at >= 0  # the batch's series that returned values now (each has its own row)
        for i, lv in enumerate(self.calibration.levels):
            if lv not in b.bounds:
                continue
            lo, hi = b.bounds[lv]
            inside = (lo <= actual) & (actual <= hi)
            self._hits[lv].extend(inside[new])
            # Learnt from the published bands, so it steers the coverage users see, a burst's values included:
            # a heavy-tailed series' band must cover its own large values.
            over_share[at[seen], i] += np.where(new, (~inside) - (1.0 - lv), 0.0)[seen]

    @staticmethod
    def _collect(
        b: _Batch, actual: np.ndarray, new: np.ndarray, at: np.ndarray, errors: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> None:
        """Add one batch's newly scored absolute errors, of the model and of every fallback, into ``errors``: per
        source, (sum, count) arrays with one row per actual series (``at`` gives each batch series' row)."""
        rows = new.any(axis=1)  # a series scored here has actual values, so a row
        for name, f in {MODEL: b.values, **b.fallbacks}.items():
            total, count = errors[name]
            np.add.at(total, at[rows], np.where(new[rows], np.abs(actual[rows] - f[rows]), 0.0))
            np.add.at(count, at[rows], new[rows])

    @staticmethod
    def _mean_errors(
        keys: list[SeriesKey], errors: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> dict[SeriesKey, dict[str, np.ndarray]]:
        """One scoring per series and cycle: its mean new error per step, of each source (NaN where none)."""
        if MODEL not in errors:
            return {}
        with np.errstate(invalid="ignore", divide="ignore"):
            means = {name: np.where(count > 0, total / count, np.nan) for name, (total, count) in errors.items()}
        scored = np.flatnonzero(errors[MODEL][1].any(axis=1))
        return {keys[row]: {name: m[row] for name, m in means.items()} for row in scored}

    def snapshot(self) -> QualitySnapshot:
        with self._lock:
            mae = [d.mean() for d in self._err]
            naive = [d.mean() for d in self._naive]
            cov = {lv: d.mean() for lv, d in self._hits.items()}
            return QualitySnapshot(mae, naive, cov, len(self._err[0]))
