"""Naive baseline: every future step repeats the last observed value."""

from __future__ import annotations

import numpy as np
import torch

from .base import ForecastModel


class NaiveNet(ForecastModel):
    name = "naive"
    trainable = False

    def fit_direct(self, X: np.ndarray, y: np.ndarray) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, 1) -> (B, H)
        return x[:, -1, :].expand(-1, self.horizon)
