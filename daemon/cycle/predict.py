"""The cycle's predict step: the model's forecasts and bands for every usable window, then what is published.

The model predicts the whole batch at once; where that fails, each series on its own, so that one series the
model cannot forecast costs that series alone. The bands are widened after an outage and clipped at a floor of
0, and the guard swaps in a fallback's forecast for the series where the model has been losing to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from promcast.daemon.cycle.bands import Bounds, clip_at_floor, widen
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
    levels: dict[float, float],
    guard: Guard | None,
    failed: Failed,
) -> Outcome:
    """The forecasts to publish for ``win`` at the adapted ``levels`` (nominal -> asked). Raises the batch's
    ValueError where no series could be forecast (``failed`` was told of each)."""
    try:
        values, bounds = _model(served, win.values, target, levels)
    except ValueError:  # one series the model cannot forecast costs that series, not the target
        kept, values, bounds = _each(served, win, target, levels, failed)
        if not kept:
            raise
        win = win.subset(kept)
    bounds = widen(values, bounds, win.long_gap, target.gap_interval_factor)
    clip = target.clip_negative  # a series never negative in its window is not forecast below 0
    if clip:
        values, bounds = clip_at_floor(win.values, values, bounds)
    model, fallbacks, sources = values, {}, [MODEL] * len(win.keys)
    if guard is not None:  # the fallbacks are computed, kept and scored only for the guard
        fallbacks = fallback_forecasts(win.values, target.horizon, target.day_steps)
        values, bounds, sources = guard.apply(win.keys, values, bounds, fallbacks, levels)
        if clip and any(src != MODEL for src in sources):  # a fallback's interval may reach below 0
            values, bounds = clip_at_floor(win.values, values, bounds)
    return Outcome(win, values, bounds, model, fallbacks, sources)


def _model(
    served: ServedModel, windows: np.ndarray, target: TargetSettings, levels: dict[float, float]
) -> tuple[np.ndarray, Bounds]:
    """Point forecasts (S, horizon) and bounds per nominal level, at the levels adapted online.

    The Forecaster raises ValueError instead of returning a non-finite value. A model made before the gate reads
    fewer points than the target's input (its window alone): it gets the last that many."""
    f = served.forecaster
    windows = windows[:, -f.input_length :]
    if f.calibration is None or not target.levels:
        return f.predict(windows), {}
    values, by_level = f.predict_interval(windows, tuple(levels.values()))
    return values, {nominal: by_level[asked] for nominal, asked in levels.items()}


def _each(
    served: ServedModel, win: Windows, target: TargetSettings, levels: dict[float, float], failed: Failed
) -> tuple[list[int], np.ndarray, Bounds]:
    """After a batch failed: each series on its own; the rows kept, their forecasts and bounds."""
    kept: list[int] = []
    parts: list[tuple[np.ndarray, Bounds]] = []
    for i, key in enumerate(win.keys):
        try:
            parts.append(_model(served, win.values[i : i + 1], target, levels))
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
