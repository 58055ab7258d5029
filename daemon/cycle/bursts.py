"""Burst detection: actual values that break the forecast.

An actual value's burst score is how far it lies outside the widest prediction interval, in widths of that
interval: 0 inside the band, 1 one band width above its upper bound (or below its lower one). Each forecast whose
horizon covered the value's time (the origins 1..H steps before it) had a band there; the score is the median of
their scores. Not the least: during a burst the latest forecasts, whose input holds the burst's first steps,
follow it (the gate hands them to naive), and the least would call the burst's second step expected. Not the
largest: one forecast thrown off by an earlier outlier in its input would make a normal value a burst.

A series is in a burst once its score has exceeded ``threshold`` at ``persistence`` consecutive steps, so that one
noisy point is not a burst, or at once when one score exceeds ``spike`` (a single point that far out is no noise:
a request spike); it leaves the burst at the first step back under the threshold. The onset (the step
the flag rises) is what an alert and ``promcast_bursts_total`` count.

One module for both uses: the daemon's quality tracker (daemon/cycle/quality.py) scores each actual value as it
arrives and keeps a ``BurstDetector`` per target; ``promcast bursts`` (daemon/offline/bursts.py) replays a
series through the same functions. Pure NumPy.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Hashable, Iterable, Sequence
from collections.abc import Set as AbstractSet

import numpy as np

__all__ = ["BurstDetector", "BurstParams", "advance", "combine", "excess", "flags", "step_scores"]

_TINY = 1e-9  # a band narrower than this, relative to its level, counts as this wide


@dataclasses.dataclass(frozen=True)
class BurstParams:
    """``threshold``: band widths outside the widest band; ``persistence``: consecutive steps above it; ``spike``:
    band widths at which one step is a burst at once (None: never)."""

    threshold: float = 0.5
    persistence: int = 2
    spike: float | None = 10.0

    def __post_init__(self) -> None:
        if not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold}")
        if self.persistence < 1:
            raise ValueError(f"persistence must be >= 1, got {self.persistence}")
        if self.spike is not None and not self.spike >= self.threshold:
            raise ValueError(f"spike must be >= threshold {self.threshold}, got {self.spike}")


def excess(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """How far ``actual`` lies outside [lower, upper], in widths of that band; 0 inside. Broadcasts."""
    a, lo, hi = (np.asarray(x, dtype=np.float64) for x in (actual, lower, upper))
    width = np.maximum(hi - lo, _TINY * (1.0 + np.abs(hi)))
    with np.errstate(invalid="ignore"):
        return np.maximum(np.maximum(a - hi, lo - a), 0.0) / width


def combine(ex: np.ndarray) -> np.ndarray:
    """The score of each value from its excesses over the covering forecasts (last axis; NaN: no forecast): their
    median; NaN where no forecast covered it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row: no forecast covered that time
        return np.nanmedian(ex, axis=-1)


def step_scores(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Burst scores (T,) of actual values (T,) from the bands (T, K) of the K forecasts that covered each time;
    NaN bands (no forecast) are left out; NaN where no forecast covered the time."""
    ex = excess(np.asarray(actual, dtype=np.float64)[:, None], lower, upper)
    return combine(np.where(np.isnan(np.asarray(lower, dtype=np.float64)), np.nan, ex))


def advance(run: np.ndarray, score: np.ndarray, params: BurstParams) -> np.ndarray:
    """Consecutive steps above the threshold after one more step: +1 above it (and at least ``persistence`` above
    ``spike``), back to 0 otherwise; a NaN score, a step not scored, leaves the run as it was."""
    with np.errstate(invalid="ignore"):
        above = score > params.threshold
        grown = (
            run + 1
            if params.spike is None
            else np.where(score > params.spike, np.maximum(run + 1, params.persistence), run + 1)
        )
    return np.where(np.isnan(score), run, np.where(above, grown, 0))


def flags(scores: np.ndarray, params: BurstParams, run: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """One series' burst flag (T,) and onsets (T,) over consecutive scores (T,), from a run of ``run`` steps
    already above the threshold; and the run after the last score."""
    s = np.asarray(scores, dtype=np.float64)
    runs = np.empty(len(s), dtype=np.int64)
    current = np.array(run)
    for t, v in enumerate(s):
        current = advance(current, np.array(v), params)
        runs[t] = current
    before = np.concatenate([[run], runs[:-1]])
    onset = (runs >= params.persistence) & (before < params.persistence)
    return runs >= params.persistence, onset, int(current)


class BurstDetector:
    """Per series: the last burst score, the run above the threshold, and whether it is in a burst."""

    def __init__(self, params: BurstParams) -> None:
        self.params = params
        self._run: dict[Hashable, int] = {}
        self._score: dict[Hashable, float] = {}

    def update(self, keys: Sequence[Hashable], scores: np.ndarray) -> list[tuple[Hashable, float]]:
        """Scores (S, T) of the series ``keys``, in time order along T (NaN where a series has no score at that
        time); the onsets, as (key, score)."""
        scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        run = np.array([self._run.get(k, 0) for k in keys], dtype=np.int64)
        onsets: list[tuple[Hashable, float]] = []
        p = self.params.persistence
        for col in scores.T:
            before, run = run, advance(run, col, self.params)
            onsets.extend((keys[i], float(col[i])) for i in np.flatnonzero((run >= p) & (before < p)).tolist())
        last = np.full(len(keys), np.nan)
        for col in scores.T:  # the last score each series had
            last = np.where(np.isnan(col), last, col)
        for i, k in enumerate(keys):
            self._run[k] = int(run[i])
            if not np.isnan(last[i]):
                self._score[k] = float(last[i])
        return onsets

    def state(self, keys: Iterable[Hashable]) -> tuple[np.ndarray, np.ndarray]:
        """The last score (NaN before any) and the flag (0 or 1) of each of ``keys``."""
        keys = list(keys)
        score = np.array([self._score.get(k, np.nan) for k in keys])
        flag = np.array([float(self._run.get(k, 0) >= self.params.persistence) for k in keys])
        return score, flag

    def forget(self, present: AbstractSet[Hashable]) -> None:
        """Drop the state of series no longer returned."""
        for k in [k for k in self._run if k not in present]:
            del self._run[k]
            self._score.pop(k, None)
