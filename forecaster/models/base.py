"""The contract every model shares: built from (window, horizon, hparams), forward (B, window, 1) -> (B, horizon)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..catalog import CATALOG, HParams

__all__ = ["ForecastModel", "HParams"]


class ForecastModel(nn.Module):
    """Base class. Subclasses set ``name`` (their row of ``forecaster.catalog``, which holds their hyperparameter
    dataclass) and implement ``forward``.

    ``trainable`` is False for models fitted without gradients: those implement ``fit_direct`` instead
    (closed-form least squares, or nothing at all for the naive baselines).
    """

    name: ClassVar[str]
    trainable: ClassVar[bool] = True

    @property
    def batch_multiplier(self) -> int:
        """Training batches hold this many times batch_size windows (an ensemble splits them per member)."""
        return 1

    def __init__(self, window: int, horizon: int, config: HParams) -> None:
        super().__init__()
        if window < 1 or horizon < 1:
            raise ValueError(f"window and horizon must be >= 1, got window={window} horizon={horizon}")
        self.window, self.horizon, self.config = window, horizon, config

    @classmethod
    def build(cls, window: int, horizon: int, **hparams: Any) -> ForecastModel:
        """Validate ``hparams`` against the catalog's dataclass (unknown names raise) and construct the model."""
        config = CATALOG[cls.name].config
        fields = {f.name: f for f in dataclasses.fields(config)}
        unknown = sorted(set(hparams) - set(fields))
        if unknown:
            raise ValueError(f"model {cls.name!r} has no hyperparameter(s) {unknown}; it takes {sorted(fields)}")
        return cls(window, horizon, config(**hparams))

    def hparams(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def fit_direct(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit without gradients, for models with ``trainable = False``."""
        raise NotImplementedError(f"{self.name} is trained by gradient descent")

    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """The loss one training batch minimises; ensembles override it to give each member its own."""
        return loss_fn(self(x), y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, window, 1) -> (B, horizon)
        raise NotImplementedError

    def scout(self, x: torch.Tensor) -> torch.Tensor:  # (B, window, 1) -> (B, horizon)
        """The forecasts the gate (``forecaster.gate``) scores on the recent past: the model itself, or for an
        ensemble its first member, which costs a fraction of the whole at nearly the same recent-past score."""
        return self(x)
