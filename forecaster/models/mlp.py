"""MLP forecaster: a small ensemble of one-hidden-layer MLPs on the window minus its last value.

Every member maps the (normalised) window to all horizon steps at once; the forecast is the members'
mean. Members are stored as stacked weights and run in one batched matmul, so three members cost about
as much as one at inference. During training each member gets its own share of every batch and its own
loss (``training_loss``): they learn from different initialisations and different batch orders, like a
seed ensemble.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import nn

from ..catalog import MLPConfig
from .base import ForecastModel
from .layers import InstanceNorm


def _stacked(members: int, fan_in: int, fan_out: int) -> tuple[nn.Parameter, nn.Parameter]:
    # nn.Linear's default initialisation, drawn independently for each member.
    bound = 1.0 / math.sqrt(fan_in)
    weight = nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound))
    bias = nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound))
    return weight, bias


class MLPNet(ForecastModel):
    name = "mlp"

    def __init__(self, window: int, horizon: int, config: MLPConfig) -> None:
        super().__init__(window, horizon, config)
        if config.members < 1 or config.layers < 1 or config.hidden < 1:
            raise ValueError(f"mlp needs members, layers and hidden >= 1, got {config}")
        self.norm = InstanceNorm(config.norm)
        widths = [window] + [config.hidden] * config.layers + [horizon]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(widths):
            w, b = _stacked(config.members, fan_in, fan_out)
            self.weights.append(w)
            self.biases.append(b)
        self.dropout = nn.Dropout(config.dropout)

    @property
    def batch_multiplier(self) -> int:
        return len(self.weights[0])

    def members(self, x: torch.Tensor, split: bool = False, first: int = 0) -> torch.Tensor:  # (B, W, 1) -> (M, B, H)
        """Every member on every window, or (``split``) member m on the m-th of M equal shares of the batch;
        ``first`` > 0 runs only the first that many members."""
        z, stats = self.norm.normalise(x[:, :, 0])  # (B, W)
        m = first or len(self.weights[0])
        h = z.view(m, -1, z.shape[1]) if split else z.unsqueeze(0).expand(m, -1, -1)  # (M, B or B/M, W)
        if split:
            stats = (stats[0].view(m, -1, 1), stats[1].view(m, -1, 1))
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b[:m], h, w[:m])  # (M, B, out)
            if i < last:
                h = self.dropout(nn.functional.gelu(h))
        return self.norm.denormalise(h, stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, 1) -> (B, H)
        return self.members(x).mean(dim=0)

    def scout(self, x: torch.Tensor) -> torch.Tensor:  # the first member alone: a third of the cost
        return self.members(x, first=1)[0]

    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        m = len(self.weights[0])
        keep = len(x) - len(x) % m if len(x) >= m else len(x)
        if keep < m:  # a last batch smaller than the ensemble: every member sees all of it
            out = self.members(x)
            return loss_fn(out, y.unsqueeze(0).expand_as(out))
        out = self.members(x[:keep], split=True)  # (M, B/M, H): one loss per member, averaged
        return loss_fn(out, y[:keep].view(m, -1, y.shape[1]))
