"""AR(p): a linear autoregression on the last ``order`` inputs, fitted by least squares, all steps at once."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..catalog import ARConfig
from .base import ForecastModel


class ARNet(ForecastModel):
    name = "ar"
    trainable = False

    def __init__(self, window: int, horizon: int, config: ARConfig) -> None:
        super().__init__(window, horizon, config)
        if not 0 <= config.order <= window:
            raise ValueError(f"ar needs 0 <= order <= window, got order={config.order} window={window}")
        self.order, self.ridge = config.order or window, config.ridge
        self.linear = nn.Linear(self.order, horizon)

    def fit_direct(self, X: np.ndarray, y: np.ndarray) -> None:
        # Direct multi-output least squares: one column of coefficients per horizon step.
        A = np.asarray(X[:, -self.order :], dtype=np.float64)
        A = np.concatenate([A, np.ones((len(A), 1))], axis=1)  # (N, p + 1)
        gram = A.T @ A + self.ridge * len(A) * np.eye(A.shape[1])
        coef = np.linalg.solve(gram, A.T @ np.asarray(y, dtype=np.float64))  # (p + 1, H)
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(coef[:-1].T.copy()))
            self.linear.bias.copy_(torch.from_numpy(coef[-1].copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, 1) -> (B, H)
        return self.linear(x[:, -self.order :, 0])
