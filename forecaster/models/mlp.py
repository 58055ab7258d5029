"""MLP forecaster: instance-normalised window -> hidden layers -> all horizon steps at once."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .base import ForecastModel, HParams
from .layers import InstanceNorm


@dataclasses.dataclass(frozen=True)
class MLPConfig(HParams):
    hidden: int = 256
    layers: int = 1
    dropout: float = 0.1
    revin: bool = True


class MLPForecaster(ForecastModel):
    name = "mlp"
    Config = MLPConfig

    def __init__(self, window: int, horizon: int, config: MLPConfig) -> None:
        super().__init__(window, horizon, config)
        self.norm = InstanceNorm(config.revin)
        blocks: list[nn.Module] = []
        width = window
        for _ in range(config.layers):
            blocks += [nn.Linear(width, config.hidden), nn.GELU(), nn.Dropout(config.dropout)]
            width = config.hidden
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, horizon)
        self.skip = nn.Linear(window, horizon)  # a linear path beside the hidden one

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, 1) -> (B, H)
        z, stats = self.norm.normalise(x[:, :, 0])  # (B, W)
        return self.norm.denormalise(self.head(self.body(z)) + self.skip(z), stats)  # (B, H)
