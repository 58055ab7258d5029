"""What the job does to the model's bands before it publishes them: the outage widening, then the physical floor.

A series whose window bridged a gap longer than ``max_gap`` steps (an outage) has its interval widened by the
target's ``gap_interval_factor`` while the gap is in its window: its input is partly made up.

A series whose input window never went below zero is not forecast below it.

Request rates, byte counts and queue lengths are never negative, but a model's extrapolation and a symmetric
interval around it can be (a band around a value near zero reaches below it). For each series whose whole input
window is non-negative, the point forecast and every bound are clipped at zero; a series that was ever negative
in its window (a temperature, a delta) keeps what the model said. A target turns this off with
``clip_negative: false``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Bounds", "clip_at_floor", "widen"]

Bounds = dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (S, H) lower, upper


def clip_at_floor(windows: np.ndarray, values: np.ndarray, bounds: Bounds) -> tuple[np.ndarray, Bounds]:
    """Forecasts (S, H) and bounds clipped at 0 for the rows whose window (S, W) is non-negative throughout."""
    rows = (np.min(windows, axis=1) >= 0)[:, None]  # (S, 1)
    if not rows.any():
        return values, bounds

    def clip(a: np.ndarray) -> np.ndarray:
        return np.where(rows, np.maximum(a, 0.0), a)

    return clip(values), {level: (clip(lo), clip(hi)) for level, (lo, hi) in bounds.items()}


def widen(values: np.ndarray, bounds: Bounds, rows: np.ndarray, factor: float) -> Bounds:
    """The bounds with the half-widths of ``rows`` (series whose window bridged an outage) times ``factor``."""
    if not rows.any() or factor == 1.0:
        return bounds
    out = {}
    for level, (lo, hi) in bounds.items():
        lo, hi = lo.copy(), hi.copy()
        lo[rows] = values[rows] - (values[rows] - lo[rows]) * factor
        hi[rows] = values[rows] + (hi[rows] - values[rows]) * factor
        out[level] = (lo, hi)
    return out
