"""The model registry: names used in settings and artifacts, mapped explicitly to classes."""

from __future__ import annotations

from typing import Any

from ..names import BASELINES
from .ar import ARForecaster
from .base import ForecastModel, HParams
from .linear import NLinearForecaster
from .mlp import MLPForecaster
from .naive import NaiveForecaster
from .rnn import GRUForecaster, LSTMForecaster
from .seasonal import SeasonalNaiveForecaster
from .transformer import TransformerForecaster

__all__ = ["BASELINES", "MODELS", "ForecastModel", "HParams", "build_model"]

MODELS: dict[str, type[ForecastModel]] = {
    "naive": NaiveForecaster,
    "seasonal_naive": SeasonalNaiveForecaster,
    "ar": ARForecaster,
    "nlinear": NLinearForecaster,
    "mlp": MLPForecaster,
    "lstm": LSTMForecaster,
    "gru": GRUForecaster,
    "transformer": TransformerForecaster,
}


def build_model(name: str, window: int, horizon: int, **hparams: Any) -> ForecastModel:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name].build(window, horizon, **hparams)
