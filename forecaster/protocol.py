"""The rolling-origin protocol: chronological borders, rolling origins, test windows, and scores per horizon step.

Shared by the evaluation (`forecaster/evaluation/`) and the retrain's promotion (`daemon/models/retrain.py`), so
that both score exactly the same windows the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from .names import DEFAULT_HORIZON
from .scalers import Scaler, make_scaler

__all__ = [
    "NO_SEASON_STEPS",
    "Borders",
    "Protocol",
    "Task",
    "day_steps",
    "error_metrics",
    "inputs_at",
    "make_task",
    "origin_stride",
    "rolling_origins",
    "score",
    "season_for",
    "targets_at",
    "window_for",
]

NO_SEASON_STEPS = 2000  # BENCHMARK.md: a day of more than this many steps counts as no season
MAX_WINDOW = 288  # BENCHMARK.md: two days of steps, capped here
NO_SEASON_WINDOW = 96  # BENCHMARK.md: the input window of a trace without a season


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Split fractions, horizon and origin density; the defaults are BENCHMARK.md's."""

    train: float = 0.7
    val: float = 0.1
    horizon: int = DEFAULT_HORIZON
    max_origins: int = 1500  # origins every max(1, test_points // max_origins) steps

    def __post_init__(self) -> None:
        if not (0 < self.train < 1 and 0 <= self.val < 1 and self.train + self.val < 1):
            raise ValueError(f"invalid split fractions: train {self.train}, validation {self.val}")
        if self.horizon < 1 or self.max_origins < 1:
            raise ValueError(f"horizon and max_origins must be >= 1: {self}")


@dataclasses.dataclass(frozen=True)
class Borders:
    """[0, train_end) train, [train_end, val_end) validation, [val_end, n) test."""

    n: int
    train_end: int
    val_end: int

    @property
    def test_points(self) -> int:
        return self.n - self.val_end

    @classmethod
    def from_fractions(cls, n: int, protocol: Protocol) -> Borders:
        train_end = int(n * protocol.train)  # truncation, as BENCHMARK.md's reference numbers were made
        return cls(n, train_end, train_end + int(n * protocol.val))


@dataclasses.dataclass(frozen=True)
class Task:
    """One series prepared for scoring: original values, z-scaler fitted on train, borders and origins."""

    values: np.ndarray  # (T,) original units, no NaN
    start: pd.Timestamp
    step: pd.Timedelta
    borders: Borders
    scaler: Scaler
    origins: np.ndarray  # (N,) index of the first target of each test window
    horizon: int

    def history(self) -> pd.Series:
        """Train + validation as a Series on its regular grid: what every model is fitted on."""
        index = pd.date_range(self.start, periods=self.borders.val_end, freq=self.step)
        return pd.Series(self.values[: self.borders.val_end], index=index, name="value")

    def targets(self) -> np.ndarray:
        return targets_at(self.values, self.origins, self.horizon)  # (N, H)

    def inputs(self, window: int) -> np.ndarray:
        return inputs_at(self.values, self.origins, window)  # (N, window)


def day_steps(step: pd.Timedelta) -> int:
    return round(pd.Timedelta(days=1) / step)


def season_for(step: pd.Timedelta) -> int | None:
    """One day of steps, or None when a day holds more than NO_SEASON_STEPS steps."""
    day = day_steps(step)
    return None if day > NO_SEASON_STEPS or day < 1 else day


def window_for(step: pd.Timedelta) -> int:
    """BENCHMARK.md's input window: two days of steps capped at MAX_WINDOW, or NO_SEASON_WINDOW without a season."""
    season = season_for(step)
    return NO_SEASON_WINDOW if season is None else max(1, min(2 * season, MAX_WINDOW))


def origin_stride(test_points: int, max_origins: int) -> int:
    return max(1, test_points // max_origins)


def rolling_origins(start: int, end: int, horizon: int, stride: int, min_history: int = 0) -> np.ndarray:
    """First-target indices from ``start`` every ``stride`` steps whose targets fit in ``[start, end)``.

    Origins with fewer than ``min_history`` points before them are dropped, so every model sees a full window.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    origins = np.arange(start, end - horizon + 1, stride)
    return origins[origins >= min_history]


def make_task(
    values: np.ndarray,
    start: pd.Timestamp,
    step: pd.Timedelta,
    protocol: Protocol,
    stride: int | None = None,
    min_history: int = 0,
) -> Task:
    """Borders, a z-scaler fitted on the train part only, and the rolling origins over the test part."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("the series holds NaN or infinite values; regularise it with every gap bridged first")
    borders = Borders.from_fractions(len(arr), protocol)
    if borders.train_end < 2 or borders.test_points < protocol.horizon:
        raise ValueError(f"{len(arr)} points are too few for a train part and a test part of {protocol.horizon}")
    every = stride if stride is not None else origin_stride(borders.test_points, protocol.max_origins)
    origins = rolling_origins(borders.val_end, borders.n, protocol.horizon, every, min_history)
    if len(origins) == 0:
        raise ValueError(f"no test origin has {min_history} points of history; the series is too short")
    scaler = make_scaler("standard", arr[: borders.train_end])
    return Task(arr, start, step, borders, scaler, origins, protocol.horizon)


def inputs_at(values: np.ndarray, origins: np.ndarray, window: int) -> np.ndarray:
    """The ``window`` points just before each origin: (N, window). Only data before the origin is seen."""
    return np.asarray(values)[origins[:, None] - window + np.arange(window)[None, :]]


def targets_at(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The ``horizon`` points from each origin on: (N, horizon)."""
    return np.asarray(values)[origins[:, None] + np.arange(horizon)[None, :]]


def error_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """MSE and MAE over every window and step, and for each horizon step (1..H)."""
    if pred.shape != truth.shape or pred.ndim != 2:
        raise ValueError(f"predictions {pred.shape} and targets {truth.shape} must be equal (N, H) arrays")
    err = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return {
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "mse_per_h": np.mean(err**2, axis=0).tolist(),
        "mae_per_h": np.mean(np.abs(err), axis=0).tolist(),
    }


def score(pred: np.ndarray, truth: np.ndarray, scaler: Scaler) -> dict[str, Any]:
    """Scores in original units and on the z-scale of ``scaler`` (train mean and std)."""
    return {
        "z": error_metrics(scaler.transform(pred), scaler.transform(truth)),
        "original": error_metrics(pred, truth),
    }
