"""The offline replays' one fit (``promcast backtest``, ``promcast bursts``): a forecaster fitted on a series' first
part, as the benchmark fits it, then asked for every step after. Imports torch: only the commands call it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from .forecaster import FAST_TRAINING, Forecaster, default_training, fast_hparams
from .models import MODELS

__all__ = ["fit_first_part"]


def fit_first_part(
    history: pd.Series,
    model: str,
    window: int,
    horizon: int,
    val_ratio: float,
    fast: bool = False,
    seed: int = 0,
) -> tuple[Forecaster, dict[str, Any]]:
    """Fit ``model`` on ``history`` (a Series on its regular grid): a network trains on the first ``1 - val_ratio``
    of its windows and stops early on the rest, which also calibrate its intervals (closed-form models use every
    window and have no calibration). ``fast``: a tiny network and a few batches (tests). Returns the forecaster
    and what the report says of it."""
    trainable = MODELS[model].trainable
    training = dataclasses.replace(FAST_TRAINING if fast else default_training(model), seed=seed, progress=False)
    f = Forecaster(
        model,
        window,
        horizon,
        step=pd.Timedelta(history.index[1] - history.index[0]),
        max_gap=None,
        val_ratio=val_ratio if trainable else 0.0,
        training=training,
        **(fast_hparams(model) if fast and trainable else {}),
    )
    f.fit(history)
    about = {"name": model, "window": window, "input_length": f.input_length, "fit_points": len(history)}
    return f, about
