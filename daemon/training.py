"""Training a target's model from its own history: used on first start and by the retrain job."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pandas as pd

from forecaster import Forecaster, TrainConfig
from forecaster.forecaster import default_training

from .settings import TargetSettings
from .source import SeriesKey, Source

__all__ = ["fit_target", "history_of"]


def history_of(source: Source, target: TargetSettings, end: datetime) -> dict[SeriesKey, pd.Series]:
    return source.fetch(target, end - target.history, end)


def training_series(history: dict[SeriesKey, pd.Series]) -> pd.Series:
    """The series to train the target's global model on: the one with the most points.

    The default models normalise every input window by its own level and spread, so one model trained on
    one series serves every series of the target.
    """
    if not history:
        raise ValueError("the query returned no series to train on")
    return max(history.values(), key=len)


def _training(target: TargetSettings, seed: int) -> TrainConfig:
    changes: dict[str, object] = {"seed": seed, "progress": False}
    if target.epochs is not None:
        changes["epochs"] = target.epochs
    return dataclasses.replace(default_training(target.model), **changes)  # type: ignore[arg-type]


def fit_target(target: TargetSettings, history: dict[SeriesKey, pd.Series], seed: int = 0) -> Forecaster:
    series = training_series(history)
    f = Forecaster(
        target.model,
        window=target.window,
        horizon=12,
        step=target.step,
        max_gap=target.max_gap,
        training=_training(target, seed),
        **target.hparams,
    )
    return f.fit(series, step=target.step)
