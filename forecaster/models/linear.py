"""NLinear (Zeng et al., AAAI 2023): one linear layer on the window minus its last value."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .base import ForecastModel, HParams


@dataclasses.dataclass(frozen=True)
class NLinearConfig(HParams):
    pass


class NLinearForecaster(ForecastModel):
    name = "nlinear"
    Config = NLinearConfig

    def __init__(self, window: int, horizon: int, config: NLinearConfig) -> None:
        super().__init__(window, horizon, config)
        self.linear = nn.Linear(window, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, 1) -> (B, H)
        x = x[:, :, 0]
        last = x[:, -1:]  # (B, 1)
        return self.linear(x - last) + last
