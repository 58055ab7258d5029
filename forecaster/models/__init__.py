"""The registry: each name of ``forecaster.catalog`` mapped to its torch network class (imports torch)."""

from __future__ import annotations

import importlib
from typing import Any

from ..catalog import BASELINES, CATALOG, HParams
from .base import ForecastModel

__all__ = ["BASELINES", "MODELS", "ForecastModel", "HParams", "build_model", "net_class"]


def net_class(name: str) -> type[ForecastModel]:
    """The torch network of model ``name``, from its catalog entry's ``net`` path."""
    module, _, cls = CATALOG[name].net.partition(":")
    net = getattr(importlib.import_module(module), cls)
    if not (isinstance(net, type) and issubclass(net, ForecastModel)) or net.name != name:
        raise TypeError(f"catalog entry {name!r} names {CATALOG[name].net}, not a ForecastModel called {name!r}")
    return net


MODELS: dict[str, type[ForecastModel]] = {name: net_class(name) for name in CATALOG}


def build_model(name: str, window: int, horizon: int, **hparams: Any) -> ForecastModel:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name].build(window, horizon, **hparams)
