"""The backtest's baselines: naive and Prometheus's ``predict_linear``, with split-conformal upper bounds
calibrated on the validation part (they have no calibration of their own)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from promcast.forecaster.protocol import Task, inputs_at, targets_at

__all__ = ["baseline_uppers", "conformal", "linear_forecast"]


def linear_forecast(values: np.ndarray, origins: np.ndarray, range_steps: int, horizon: int) -> np.ndarray:
    """Prometheus's ``predict_linear``: the least-squares line through the ``range_steps`` points before each
    origin, extrapolated to each of the next ``horizon`` steps. (N, horizon)."""
    x = np.arange(range_steps, dtype=np.float64)
    xc = x - x.mean()
    y = inputs_at(values, origins, range_steps)  # (N, range)
    slope = (y - y.mean(axis=1, keepdims=True)) @ xc / max(float(xc @ xc), 1e-12)
    ahead = range_steps - 1 - x.mean() + np.arange(1, horizon + 1, dtype=np.float64)
    return y.mean(axis=1, keepdims=True) + slope[:, None] * ahead[None, :]


def conformal(errors: np.ndarray, levels: tuple[float, ...]) -> dict[float, np.ndarray]:
    """Per level, the split-conformal quantile of absolute errors (N, H) per step: ceil((n + 1) level) / n."""
    n = len(errors)
    return {
        lv: np.quantile(np.abs(errors), min(1.0, math.ceil((n + 1) * lv) / n), axis=0, method="higher") for lv in levels
    }


def baseline_uppers(
    task: Task, point_of: Callable[[np.ndarray], np.ndarray], levels: tuple[float, ...]
) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """A baseline's point forecasts at the replay's origins, and its upper bounds per level, calibrated on the
    origins of the validation part."""
    b = task.borders
    start = max(b.train_end, task.origins[0] - (b.val_end - b.train_end))
    cal = np.arange(start, b.val_end - task.horizon + 1)
    if len(cal) < 10:
        raise ValueError(f"the validation part holds {len(cal)} origins; at least 10 are needed to calibrate")
    q = conformal(point_of(cal) - targets_at(task.values, cal, task.horizon), levels)
    point = point_of(task.origins)
    return point, {lv: point + q[lv][None, :] for lv in levels}
