"""Split-conformal prediction intervals per horizon step, calibrated on held-out validation windows.

The nonconformity score of a window is ``|y_h - yhat_h| / s``, where ``s`` is the window's mean absolute
step-to-step change (its own volatility, floored). Dividing by it makes the score unit-free, so one
calibration serves series at any level and widens the band on volatile windows. The calibration keeps the
scores' quantiles on a grid of probabilities, so any level on the grid can be asked for later, which the
daemon's online adaptation (adaptive conformal inference) needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Calibration", "calibrate", "window_scale"]

PROBS = np.round(np.arange(0.005, 1.0, 0.005), 3)  # 0.005 .. 0.995
FLOOR = 1e-3  # on the z-scale: a flat window still gets a band of a thousandth of the training spread


def window_scale(z: np.ndarray) -> np.ndarray:
    """(N, W) scaled windows -> (N, 1): mean absolute change between steps, floored."""
    return np.maximum(np.mean(np.abs(np.diff(z, axis=1)), axis=1, keepdims=True), FLOOR)


@dataclass(frozen=True)
class Calibration:
    quantiles: np.ndarray  # (len(PROBS), H): score quantiles with the finite-sample correction
    windows: int

    def width(self, level: float) -> np.ndarray:
        """Half-width multipliers (H,) for a central interval of probability ``level``."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"interval level must lie in (0, 1), got {level}")
        p = float(np.clip(level, PROBS[0], PROBS[-1]))
        return np.array([np.interp(p, PROBS, self.quantiles[:, h]) for h in range(self.quantiles.shape[1])])

    def widths(self, levels: Sequence[float]) -> dict[float, np.ndarray]:
        """Half-width multipliers (H,) per level, strictly increasing with the level at every step.

        With n windows the stored quantiles are order statistics, equal over runs of the grid (109 windows
        leave 91 of 198 neighbours equal, and every level above about n / (n + 1) reads the largest score), so
        two distinct levels can read one band. Where a level's width is not above the narrower level's, it
        takes the next larger stored quantile instead: wider, so its coverage stays at least its level's.
        Above the largest score (where conformal has no finite answer) it adds the last gap between distinct
        quantiles. A level asked alone, or already wider than the one below it, reads ``width`` unchanged."""
        out: dict[float, np.ndarray] = {}
        below: np.ndarray | None = None
        for level in sorted(set(levels)):
            w = self.width(level)
            if below is not None:
                for h in np.flatnonzero(w <= below):
                    w[h] = _above(self.quantiles[:, h], float(below[h]))
            out[level] = below = w
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": "abs_error / mean_abs_step_change",
            "windows": self.windows,
            "probs": PROBS.tolist(),
            "quantiles": np.round(self.quantiles, 6).tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], horizon: int) -> Calibration:
        q = np.asarray(d["quantiles"], dtype=np.float64)
        if q.shape != (len(PROBS), horizon) or not np.isfinite(q).all() or list(d["probs"]) != PROBS.tolist():
            raise ValueError(f"interval calibration has shape {q.shape}, expected {(len(PROBS), horizon)}")
        return cls(q, int(d["windows"]))


def _above(q: np.ndarray, w: float) -> float:
    """The smallest stored quantile of one step above ``w``; past the largest, ``w`` plus the last gap."""
    distinct = np.unique(q)
    larger = distinct[distinct > w]
    if len(larger):
        return float(larger[0])
    return float(w + (distinct[-1] - distinct[-2] if len(distinct) > 1 else FLOOR))


MIN_WINDOWS = 20  # fewer held-out windows give no calibration


def calibrate(z_windows: np.ndarray, z_truth: np.ndarray, z_pred: np.ndarray) -> Calibration | None:
    """Quantiles of the normalised absolute errors of held-out windows; None when there are too few."""
    n = len(z_windows)
    if n < MIN_WINDOWS:
        return None
    scores = np.abs(z_truth - z_pred) / window_scale(z_windows)  # (N, H)
    # Split-conformal: the ceil((n + 1) p) / n empirical quantile covers at least p of new windows.
    ranks = np.minimum([math.ceil((n + 1) * p) / n for p in PROBS], 1.0)
    return Calibration(np.quantile(scores, ranks, axis=0, method="higher"), n)
