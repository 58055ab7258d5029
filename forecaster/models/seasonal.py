"""Seasonal naive baseline: each future step repeats the value one season (``period`` steps) earlier."""

from __future__ import annotations

import numpy as np
import torch

from ..catalog import SeasonalConfig
from .base import ForecastModel


class SeasonalNaiveNet(ForecastModel):
    name = "seasonal_naive"
    trainable = False
    index: torch.Tensor

    def __init__(self, window: int, horizon: int, config: SeasonalConfig) -> None:
        super().__init__(window, horizon, config)
        if not 1 <= config.period <= window:
            raise ValueError(f"seasonal_naive needs 1 <= period <= window, got period={config.period} window={window}")
        # Input position used for future step h (0-based): one period back, wrapping for h >= period.
        idx = [window - config.period + (h % config.period) for h in range(horizon)]
        self.register_buffer("index", torch.tensor(idx, dtype=torch.long), persistent=False)

    def fit_direct(self, X: np.ndarray, y: np.ndarray) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, 1) -> (B, H)
        return x[:, :, 0].index_select(1, self.index)
