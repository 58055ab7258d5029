"""The live safety net: per series, publish a fallback's forecast while the model has been losing to it.

For every series the guard keeps, per horizon step, an exponentially weighted MAE of the served model's own
forecasts and of each fallback's (naive: the last value repeated; seasonal naive: the value one day before, where
a day of steps fits the input), scored by the quality tracker as the actual values arrive. The model keeps being
scored while a fallback is published, so the guard sees it recover.

Hysteresis, so that a noisy boundary does not flap: a series leaves the model when the model's MAE exceeds the
best fallback's by ``margin`` (relative) on ``patience`` consecutive scorings, and comes back when the model's MAE
is at most the best fallback's on ``patience`` consecutive scorings. No decision is taken before ``window``
scorings of the series. A fallback's interval is its point ± its own MAE per step times ln(1 / (1 - level)), the
central interval of Laplace errors with that mean absolute error; each series' width factors then scale it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np

from promcast.daemon.types import SeriesKey
from promcast.forecaster.forwards import repeat_last

__all__ = ["FALLBACKS", "MODEL", "Guard", "GuardParams", "Switch", "fallback_forecasts"]

MODEL = "model"
FALLBACKS = ("naive", "seasonal_naive")


def fallback_forecasts(windows: np.ndarray, horizon: int, period: int | None) -> dict[str, np.ndarray]:
    """Each fallback's (S, horizon) forecast from the (S, L) input windows; seasonal naive only where the period
    (a day of steps) fits the window."""
    out = {"naive": repeat_last(windows, horizon)}
    length = windows.shape[1]
    if period is not None and 1 <= period <= length:
        out["seasonal_naive"] = windows[:, length - period + np.arange(horizon) % period]
    return out


@dataclass(frozen=True)
class GuardParams:
    window: int = 288  # scorings (cycles that scored the series) the rolling MAE spans: weight 2 / (window + 1); no
    # decision before this many
    margin: float = 0.25  # the model must be this much worse (relative MAE) than the best fallback to be left
    patience: int = 36  # consecutive scorings that must agree before a switch, either way


@dataclass(frozen=True)
class Switch:
    """One series changing source; a log line and a count each."""

    key: SeriesKey
    source: str  # the source it is served from now
    previous: str
    model_mae: float
    fallback_mae: float


@dataclass
class _State:
    mae: dict[str, np.ndarray]  # source -> (H,) weighted MAE per step, NaN until scored
    scorings: int = 0
    source: str = MODEL
    fallback: str = "naive"  # the best fallback at the last decision: what is published while off the model
    streak: int = 0  # consecutive scorings that argued for leaving ``source``


@dataclass
class Guard:
    horizon: int
    params: GuardParams = field(default_factory=GuardParams)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[SeriesKey, _State] = {}

    def _state(self, key: SeriesKey) -> _State:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State({})
        return state

    def update(self, key: SeriesKey, errors: dict[str, np.ndarray]) -> Switch | None:
        """Fold one scoring of ``key`` in: source -> (H,) absolute errors, NaN for the steps not scored now.
        Returns the switch it causes, if any."""
        weight = 2.0 / (self.params.window + 1)
        with self._lock:
            s = self._state(key)
            for source, err in errors.items():
                mae = s.mae.setdefault(source, np.full(self.horizon, np.nan))
                err = np.asarray(err, dtype=float)
                first, later = np.isnan(mae) & np.isfinite(err), ~np.isnan(mae) & np.isfinite(err)
                mae[first] = err[first]
                mae[later] += weight * (err[later] - mae[later])
            s.scorings += 1
            return self._decide(key, s)

    def _decide(self, key: SeriesKey, s: _State) -> Switch | None:
        fallbacks = [f for f in FALLBACKS if f in s.mae]
        if s.scorings < self.params.window or MODEL not in s.mae or not fallbacks:
            return None
        steps = np.isfinite(s.mae[MODEL]) & np.all([np.isfinite(s.mae[f]) for f in fallbacks], axis=0)
        if not steps.any():
            return None
        model = float(s.mae[MODEL][steps].mean())
        scores = {f: float(s.mae[f][steps].mean()) for f in fallbacks}
        s.fallback = min(scores, key=lambda f: (scores[f], FALLBACKS.index(f)))
        best = scores[s.fallback]
        leave = model > (1.0 + self.params.margin) * best if s.source == MODEL else model <= best
        s.streak = s.streak + 1 if leave else 0
        if s.streak < self.params.patience:
            return None
        previous, s.source, s.streak = s.source, (s.fallback if s.source == MODEL else MODEL), 0
        return Switch(key, s.source, previous, model, best)

    def sources(self, keys: list[SeriesKey] | tuple[SeriesKey, ...]) -> list[str]:
        """The source each series is published from now: "model", or the fallback it has been switched to."""
        with self._lock:
            out = []
            for key in keys:
                s = self._states.get(key)
                out.append(MODEL if s is None or s.source == MODEL else s.fallback)
            return out

    def fallback_mae(self, key: SeriesKey, source: str) -> np.ndarray | None:
        with self._lock:
            s = self._states.get(key)
            return None if s is None or source not in s.mae else s.mae[source].copy()

    def forget(self, present: set[SeriesKey]) -> None:
        """Drop the state of series that are gone."""
        with self._lock:
            for key in set(self._states) - present:
                del self._states[key]

    def apply(
        self,
        keys: list[SeriesKey] | tuple[SeriesKey, ...],
        values: np.ndarray,
        bounds: dict[float, tuple[np.ndarray, np.ndarray]],
        fallbacks: dict[str, np.ndarray],
    ) -> tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]], list[str]]:
        """The forecasts to publish: the model's, except for the series on a fallback, which get the fallback's
        point and interval."""
        sources = self.sources(keys)
        if all(src == MODEL for src in sources):
            return values, bounds, sources
        values = values.copy()
        bounds = {lv: (lo.copy(), hi.copy()) for lv, (lo, hi) in bounds.items()}
        for i, (key, src) in enumerate(zip(keys, sources, strict=True)):
            if src == MODEL or src not in fallbacks:
                sources[i] = MODEL
                continue
            values[i] = fallbacks[src][i]
            mae = self.fallback_mae(key, src)
            if mae is None or not np.isfinite(mae).any():
                mae = np.zeros(self.horizon)
            mae = np.where(np.isfinite(mae), mae, np.nanmax(mae))  # a step not scored yet: the widest scored
            for nominal, (lo, hi) in bounds.items():
                half = mae * math.log(1.0 / (1.0 - nominal))
                lo[i], hi[i] = values[i] - half, values[i] + half
        return values, bounds, sources
