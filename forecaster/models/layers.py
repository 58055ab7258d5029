"""Layers shared by several models: reversible instance normalisation and sinusoidal positions."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["InstanceNorm", "SinusoidalPositions"]


class InstanceNorm(nn.Module):
    """Reversible instance normalisation (Kim et al., ICLR 2022) without learned affine terms.

    Each input window is centred on its own mean and divided by its own spread; the output is mapped back
    with the same statistics, so a level shift between training and serving does not move the network off
    the range it was trained on. Disabled, it is the identity.
    """

    def __init__(self, enabled: bool, eps: float = 1e-5) -> None:
        super().__init__()
        self.enabled, self.eps = enabled, eps

    def normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        # x: (B, L)
        if not self.enabled:
            return x, (torch.zeros_like(x[:, :1]), torch.ones_like(x[:, :1]))
        mean = x.mean(dim=1, keepdim=True)  # (B, 1)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)  # (B, 1)
        return (x - mean) / std, (mean, std)

    def denormalise(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        mean, std = stats  # y: (B, H)
        return y * std + mean if self.enabled else y


class SinusoidalPositions(nn.Module):
    """Adds the fixed sine/cosine position code of Vaswani et al. to (B, L, D) inputs."""

    pe: torch.Tensor

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)  # (L, 1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, D)
        return x + self.pe[: x.size(1)]
