"""The model table: one torch-free entry per model, read by everything that names a model.

``CATALOG`` gives each model its name, its hyperparameter dataclass, where its torch network lives, its NumPy
forward (``forecaster.forwards``) or none, and the training that suits it. The registry
(``forecaster.models.MODELS``), the CLI choices, the daemon's settings validation and the NumPy loader
(``forecaster.numpy_runtime``) all read this table; nothing here imports torch, so the daemon validates its settings
and serves without it.

To add a model: its network in ``forecaster/models/<name>.py`` (a ``ForecastModel`` subclass named ``*Net``), its
hyperparameters and its row below, and, to serve it without torch, its forward in ``forecaster/forwards.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import forwards
from .forwards import Builder

__all__ = [
    "BASELINES",
    "CATALOG",
    "MODEL_NAMES",
    "ARConfig",
    "HParams",
    "MLPConfig",
    "ModelSpec",
    "NLinearConfig",
    "NaiveConfig",
    "RNNConfig",
    "SeasonalConfig",
    "TransformerConfig",
]


@dataclasses.dataclass(frozen=True)
class HParams:
    """Base of each model's frozen hyperparameter dataclass."""


@dataclasses.dataclass(frozen=True)
class NaiveConfig(HParams):
    pass


@dataclasses.dataclass(frozen=True)
class SeasonalConfig(HParams):
    period: int = 24


@dataclasses.dataclass(frozen=True)
class ARConfig(HParams):
    order: int = 0  # 0 means the whole window
    ridge: float = 1e-6  # a touch of ridge keeps the solve stable on near-collinear windows


@dataclasses.dataclass(frozen=True)
class NLinearConfig(HParams):
    pass


@dataclasses.dataclass(frozen=True)
class MLPConfig(HParams):
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.1
    members: int = 3
    norm: str = "last"  # "last": subtract the last value; "meanstd": reversible instance norm; "none"
    # Candidate seasons, in steps, for a seasonal feature (``forecaster.forwards.seasonal_features``; needs
    # norm="meanstd"): the network also reads a seasonal-naive forecast weighted by each candidate's
    # autocorrelation in the window, and those autocorrelations. Empty: none.
    periods: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class RNNConfig(HParams):
    hidden: int = 64
    layers: int = 1
    dropout: float = 0.0
    revin: bool = True  # reversible instance normalisation of each window


@dataclasses.dataclass(frozen=True)
class TransformerConfig(HParams):
    d_model: int = 32
    heads: int = 4
    layers: int = 2
    ff: int = 64
    dropout: float = 0.1
    patch_len: int = 1
    stride: int = 1
    revin: bool = True


@dataclass(frozen=True)
class ModelSpec:
    """One model: ``net`` is "module:Class" of its torch network, imported only when a model is built."""

    name: str
    config: type[HParams]
    net: str
    numpy: Builder | None = None  # the NumPy forward's builder; None: served through torch only
    training: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig fields that differ from its defaults
    baseline: bool = False  # measured beside every model in an evaluation; never gated

    @property
    def hparam_names(self) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(self.config))


_SPECS = (
    ModelSpec("naive", NaiveConfig, "promcast.forecaster.models.naive:NaiveNet", forwards.naive, baseline=True),
    ModelSpec(
        "seasonal_naive",
        SeasonalConfig,
        "promcast.forecaster.models.seasonal:SeasonalNaiveNet",
        forwards.seasonal_naive,
        baseline=True,
    ),
    ModelSpec("ar", ARConfig, "promcast.forecaster.models.ar:ARNet", forwards.ar, baseline=True),
    ModelSpec("nlinear", NLinearConfig, "promcast.forecaster.models.linear:NLinearNet", forwards.nlinear),
    ModelSpec(
        "mlp", MLPConfig, "promcast.forecaster.models.mlp:MLPNet", forwards.mlp,
        training=MappingProxyType({"epochs": 60, "patience": 6, "loss": "mae", "refit": True, "max_batches": 32}),
    ),
    ModelSpec("lstm", RNNConfig, "promcast.forecaster.models.rnn:LSTMNet"),
    ModelSpec("gru", RNNConfig, "promcast.forecaster.models.rnn:GRUNet"),
    ModelSpec("transformer", TransformerConfig, "promcast.forecaster.models.transformer:TransformerNet"),
)  # fmt: skip

CATALOG: Mapping[str, ModelSpec] = MappingProxyType({s.name: s for s in _SPECS})
MODEL_NAMES = tuple(CATALOG)
BASELINES = tuple(s.name for s in _SPECS if s.baseline)
