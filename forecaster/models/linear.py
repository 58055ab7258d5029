"""NLinear (Zeng et al., AAAI 2023): one linear layer on the window minus its last value."""

from __future__ import annotations

import torch
from torch import nn

from ..catalog import NLinearConfig
from .base import ForecastModel


class NLinearNet(ForecastModel):
    name = "nlinear"

    def __init__(self, window: int, horizon: int, config: NLinearConfig) -> None:
        super().__init__(window, horizon, config)
        self.linear = nn.Linear(window, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, 1) -> (B, H)
        x = x[:, :, 0]
        last = x[:, -1:]  # (B, 1)
        return self.linear(x - last) + last
