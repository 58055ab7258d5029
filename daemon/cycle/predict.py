"""The cycle's predict step: the model's forecasts and bands for every usable window, then what is published.

The model predicts the whole batch at once; where that fails, each series on its own, so that one series the
model cannot forecast costs that series alone. The bands are widened after an outage, the guard swaps in a
fallback's forecast for the series where the model has been losing to it, each series' band is scaled by its own
width factors (daemon/cycle/calibrate.py), and the forecasts are clipped at a floor of 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from promcast.daemon.cycle.bands import Bounds, clip_at_floor, widen
from promcast.daemon.cycle.calibrate import SeriesCalibration
from promcast.daemon.cycle.guard import MODEL, Guard, fallback_forecasts
from promcast.daemon.cycle.windows import Windows
from promcast.daemon.models.serving import ServedModel
from promcast.daemon.settings import TargetSettings
from promcast.daemon.types import SeriesKey

__all__ = ["Outcome", "predict"]

Failed = Callable[[SeriesKey, ValueError], None]  # told of each series the model cannot forecast


@dataclass(frozen=True)
class Outcome:
    """A cycle's forecasts before they are published."""

    windows: Windows
    values: np.ndarray  # (S, H) published: the model's, or a fallback's for the series the guard moved
    bounds: Bounds
    model: np.ndarray  # (S, H) the model's own forecasts, scored whatever is published
    fallbacks: dict[str, np.ndarray]  # the guard's fallbacks' forecasts (S, H) by name
    sources: list[str]  # per series: "model" or the fallback published


def predict(
    served: ServedModel,
    win: Windows,
    target: TargetSettings,
    calibration: SeriesCalibration,
    guard: Guard | None,
    failed: Failed,
) -> Outcome:
    """The forecasts to publish for ``win``, each series' bands scaled by its ``calibration``. Raises the batch's
    ValueError where no series could be forecast (``failed`` was told of each)."""
    try:
        values, bounds = _model(served, win.values, target)
    except ValueError:  # one series the model cannot forecast costs that series, not the target
        kept, values, bounds = _each(served, win, target, failed)
        if not kept:
            raise
        win = win.subset(kept)
    bounds = widen(values, bounds, win.long_gap, target.gap_interval_factor)
    model, fallbacks, sources = values, {}, [MODEL] * len(win.keys)
    if guard is not None:  # the fallbacks are computed, kept and scored only for the guard
        fallbacks = fallback_forecasts(win.values, target.horizon, target.day_steps)
        values, bounds, sources = guard.apply(win.keys, values, bounds, fallbacks)
    # Each series' widths scale its band around the point before the floor: the band, not a band cut at 0.
    bounds = calibration.apply(win.keys, values, bounds)
    if target.clip_negative:  # a series never negative in its window is not forecast below 0
        clipped, bounds = clip_at_floor(win.values, values, bounds)
        model = clipped if model is values else clip_at_floor(win.values, model, {})[0]  # the guard kept it: once
        values = clipped
    return Outcome(win, values, bounds, model, fallbacks, sources)


def _model(served: ServedModel, windows: np.ndarray, target: TargetSettings) -> tuple[np.ndarray, Bounds]:
    """Point forecasts (S, horizon) and the model's calibrated bounds per level.

    The Forecaster raises ValueError instead of returning a non-finite value. A model made before the gate reads
    fewer points than the target's input (its window alone): it gets the last that many."""
    f = served.forecaster
    windows = windows[:, -f.input_length :]
    if f.calibration is None or not target.levels:
        return f.predict(windows), {}
    return f.predict_interval(windows, tuple(target.levels))


def _each(
    served: ServedModel, win: Windows, target: TargetSettings, failed: Failed
) -> tuple[list[int], np.ndarray, Bounds]:
    """After a batch failed: each series on its own; the rows kept, their forecasts and bounds."""
    kept: list[int] = []
    parts: list[tuple[np.ndarray, Bounds]] = []
    for i, key in enumerate(win.keys):
        try:
            parts.append(_model(served, win.values[i : i + 1], target))
        except ValueError as exc:
            failed(key, exc)
            continue
        kept.append(i)
    if not kept:
        return [], np.empty((0, 0)), {}
    values = np.concatenate([v for v, _ in parts])
    bounds = {
        level: (np.concatenate([b[level][0] for _, b in parts]), np.concatenate([b[level][1] for _, b in parts]))
        for level in parts[0][1]
    }
    return kept, values, bounds
