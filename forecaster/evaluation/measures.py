"""Measures beyond error: convergence speed, stability across seeds, smoothness, lag and error at peaks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "DEFINITIONS",
    "best_shift",
    "convergence",
    "lag_per_horizon",
    "peak_error",
    "roughness",
    "smoothness",
    "stability",
    "worst_windows",
]

DEFINITIONS = {
    "convergence": "the first epoch (and the training seconds up to its end) whose validation loss is within 5% of "
    "the best validation loss of the run.",
    "stability": "the standard deviation (and the range) of the test z-MAE over the seeds; closed-form models "
    "have none.",
    "smoothness": "the mean absolute second difference of the 12-step forecast along the horizon, divided by that "
    "of the truth (1 is as rough as the truth, 0 a straight line).",
    "lag": "the shift s in steps that minimises the squared error between the h-step forecasts and the truth "
    "moved s steps later, averaged over h; repeating the last value gives a lag of h at step h.",
    "peaks": "the mean signed z-error where the truth is in its top 5% (overshoot when positive, undershoot when "
    "negative).",
}


def convergence(val_loss: Sequence[float], epoch_seconds: Sequence[float], tolerance: float = 0.05) -> dict[str, Any]:
    """Epochs and seconds until the validation loss first comes within ``tolerance`` of its best."""
    if len(val_loss) == 0:
        return {"epochs": None, "seconds": None, "best_epoch": None, "best_val_loss": None}
    losses = np.asarray(val_loss, dtype=np.float64)
    best = float(losses.min())
    reached = int(np.flatnonzero(losses <= best + tolerance * abs(best))[0])
    return {
        "epochs": reached + 1,
        "seconds": float(np.sum(epoch_seconds[: reached + 1])),
        "best_epoch": int(losses.argmin()) + 1,
        "best_val_loss": best,
    }


def stability(maes: Sequence[float]) -> dict[str, Any]:
    """Spread of the test MAE across seeds (sample standard deviation)."""
    arr = np.asarray(maes, dtype=np.float64)
    spread = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {
        "seeds": len(arr),
        "mean": float(arr.mean()),
        "std": spread,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "range": float(arr.max() - arr.min()),
    }


def roughness(x: np.ndarray) -> float:
    """Mean absolute second difference along the last axis; 0 for straight lines."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape[-1] < 3:
        return 0.0
    return float(np.mean(np.abs(np.diff(arr, n=2, axis=-1))))


def smoothness(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    forecast, actual = roughness(pred), roughness(truth)
    return {"forecast": forecast, "truth": actual, "ratio": forecast / actual if actual > 0 else float("nan")}


def best_shift(pred: np.ndarray, times: np.ndarray, series: np.ndarray, max_shift: int) -> int:
    """The shift s in [-max_shift, max_shift] minimising mean (pred - series[times - s])^2.

    A positive s means the forecast lags: it reproduces the truth s steps late. Every candidate is scored on the
    same points (those with room for every shift), and ties go to the smallest |s|.
    """
    p, t, y = np.asarray(pred, dtype=np.float64), np.asarray(times), np.asarray(series, dtype=np.float64)
    keep = (t - max_shift >= 0) & (t + max_shift < len(y))
    if not keep.any():
        raise ValueError(f"no point has room for shifts of ±{max_shift} steps")
    p, t = p[keep], t[keep]
    shifts = sorted(range(-max_shift, max_shift + 1), key=lambda s: (abs(s), s))
    errors = [float(np.mean((p - y[t - s]) ** 2)) for s in shifts]
    return shifts[int(np.argmin(errors))]


def lag_per_horizon(pred: np.ndarray, origins: np.ndarray, series: np.ndarray, max_shift: int) -> list[int]:
    """The best-aligning shift of the h-step forecasts, for each step h = 1..H. ``pred`` is (N, H)."""
    return [best_shift(pred[:, h], origins + h, series, max_shift) for h in range(pred.shape[1])]


def peak_error(pred: np.ndarray, truth: np.ndarray, quantile: float = 0.95) -> dict[str, float]:
    """Mean signed error (pred - truth) where the truth is at or above its ``quantile``."""
    threshold = float(np.quantile(truth, quantile))
    mask = truth >= threshold
    return {"threshold": threshold, "points": int(mask.sum()), "signed_error": float(np.mean((pred - truth)[mask]))}


def worst_windows(pred: np.ndarray, truth: np.ndarray, k: int = 3, origins: np.ndarray | None = None) -> np.ndarray:
    """Row indices of the ``k`` windows with the largest MAE, worst first.

    With ``origins``, windows whose targets overlap an already chosen one are skipped, so the k are k events.
    """
    mae = np.mean(np.abs(np.asarray(pred) - np.asarray(truth)), axis=1)
    order = np.argsort(-mae, kind="stable")
    if origins is None:
        return order[:k]
    chosen: list[int] = []
    for i in order:
        if all(abs(int(origins[i]) - int(origins[j])) >= pred.shape[1] for j in chosen):
            chosen.append(int(i))
            if len(chosen) == k:
                break
    return np.asarray(chosen, dtype=np.int64)
