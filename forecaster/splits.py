"""Sliding windows and chronological splits: the only place where series become (X, y) pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Split", "chronological_split", "make_windows", "split_windows"]


def make_windows(values: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Return views ``X`` (N, window) and ``y`` (N, horizon) with N = len(values) - window - horizon + 1.

    Row i is inputs ``values[i : i + window]`` and targets ``values[i + window : i + window + horizon]``.
    Nothing is copied: both are read-only views of ``values``.
    """
    if window < 1 or horizon < 0:
        raise ValueError(f"window must be >= 1 and horizon >= 0, got window={window} horizon={horizon}")
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    if len(arr) < window + horizon:
        raise ValueError(f"need at least window + horizon = {window + horizon} points, got {len(arr)}")
    both = sliding_window_view(arr, window + horizon)  # (N, window + horizon)
    return both[:, :window], both[:, window:]


@dataclass(frozen=True)
class Split:
    """Borders of a chronological split: [0, train_end) train, [train_end, val_end) validation, the rest test."""

    n: int
    train_end: int
    val_end: int


def chronological_split(n: int, val_ratio: float, test_ratio: float = 0.0) -> Split:
    if not (0.0 <= val_ratio < 1.0 and 0.0 <= test_ratio < 1.0 and val_ratio + test_ratio < 1.0):
        raise ValueError(f"invalid split ratios: validation {val_ratio}, test {test_ratio}")
    val_end = n - round(n * test_ratio)
    train_end = val_end - round(n * val_ratio)
    return Split(n=n, train_end=train_end, val_end=val_end)


def split_windows(values: np.ndarray, window: int, horizon: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose targets all lie in ``[start, end)``; inputs may reach back before ``start``.

    Windows touching a NaN (an unbridged gap) are dropped, so no window ever crosses a long gap.
    """
    lo = max(0, start - window)
    part = values[lo:end]
    if len(part) < window + horizon:
        empty = np.empty((0, window)), np.empty((0, horizon))
        return empty
    X, y = make_windows(part, window, horizon)
    # The first target of row i sits at lo + i + window; keep rows whose first target is >= start.
    first = max(0, start - lo - window)
    X, y = X[first:], y[first:]
    ok = np.isfinite(X).all(axis=1) & np.isfinite(y).all(axis=1)
    if ok.all():
        return X, y
    return X[ok], y[ok]
