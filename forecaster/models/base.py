"""The contract every model shares: built from (window, horizon, hparams), forward (B, window, 1) -> (B, horizon)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..catalog import CATALOG, HParams

__all__ = ["PASS_FLOATS", "ForecastModel", "HParams"]

# The most floats one forward pass of a batch may hold at its largest activation (512 MB of float32): a model that
# says how many a window takes (``window_floats``) runs a larger batch in passes of fewer windows.
PASS_FLOATS = 2**27


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

    def window_floats(self, training: bool) -> int | None:
        """Floats one window's forward pass holds at its largest activation (``training``: with what the backward
        pass keeps); None where that is small enough for any batch to pass at once. A batch trained in parts must
        have the mean over its windows as its loss: an ensemble that splits its batch among members returns None."""
        return None

    def pass_rows(self, training: bool = False) -> int | None:
        """Windows one forward pass takes at most so that it holds at most ``PASS_FLOATS``; None: any number."""
        floats = self.window_floats(training)
        return None if floats is None else max(1, PASS_FLOATS // floats)

    def in_passes(self, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """``forward`` (the model, or its ``scout``) over a batch in passes of at most ``pass_rows()`` windows, the
        outputs stacked: one pass's memory, whatever the batch. The passes are of equal size (within one): a pass of
        a few rows would take BLAS's small-matrix kernels, whose last bits differ from the whole batch's."""
        rows = self.pass_rows()
        if rows is None or len(x) <= rows:
            return forward(x)
        return torch.cat([forward(part) for part in x.tensor_split(-(-len(x) // rows))])

    def scout(self, x: torch.Tensor) -> torch.Tensor:  # (B, window, 1) -> (B, horizon)
        """The forecasts the gate (``forecaster.gate``) scores on the recent past: the model itself, or for an
        ensemble its first member, which costs a fraction of the whole at nearly the same recent-past score."""
        return self(x)
