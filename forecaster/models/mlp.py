"""MLP forecaster: a small ensemble of one-hidden-layer MLPs on the window minus its last value.

Every member maps the (normalised) window to all horizon steps at once; the forecast is the members'
mean. With ``periods`` (``MLPConfig``) the network also reads a seasonal feature of the normalised window
(``seasonal_features``): the seasonal-naive forecast of each candidate period, weighted by the periods'
autocorrelations, and those autocorrelations. Members are stored as stacked weights and run in one batched
matmul, so three members cost about as much as one at inference. During training each member gets its own
share of every batch and its own loss (``training_loss``): they learn from different initialisations and
different batch orders, like a seed ensemble.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import nn

from ..catalog import MLPConfig
from ..forwards import SHARPNESS, check_periods, seasonal_width
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
        self.periods = tuple(int(p) for p in config.periods)
        check_periods(self.periods, self.norm.mode, window)
        if self.periods:  # the season's forecast and each candidate's autocorrelation (seasonal_features)
            index = [[window - p + h % p for h in range(horizon)] for p in self.periods]
            self.register_buffer("season_index", torch.tensor(index), persistent=False)  # rebuilt, never saved
        widths = [window + seasonal_width(self.periods, horizon)] + [config.hidden] * config.layers + [horizon]
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
        if self.periods:
            z = torch.cat([z, self.seasonal_features(z)], dim=1)  # (B, W + H + P)
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

    def seasonal_features(self, z: torch.Tensor) -> torch.Tensor:  # (B, W) normalised -> (B, H + P)
        """The seasonal-naive forecast of each candidate period, weighted by a softmax of the periods'
        autocorrelations in the window (``SHARPNESS``), then those autocorrelations (forwards.seasonal_features)."""
        acf = torch.stack([(z[:, p:] * z[:, :-p]).mean(dim=1) for p in self.periods], dim=1)  # (B, P)
        weight = torch.softmax(SHARPNESS * acf, dim=1)  # (B, P)
        index: torch.Tensor = self.season_index  # type: ignore[assignment]  # a buffer: (P, H)
        season = (weight.unsqueeze(2) * z[:, index]).sum(dim=1)  # (B, P, H) -> (B, H)
        return torch.cat([season, acf], dim=1)

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
