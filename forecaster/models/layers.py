"""Layers shared by several models: reversible instance normalisation and sinusoidal positions."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["InstanceNorm", "SinusoidalPositions"]


class InstanceNorm(nn.Module):
    """Reversible normalisation of each input window, undone on the output.

    ``"meanstd"`` is reversible instance normalisation (Kim et al., ICLR 2022) without learned affine terms:
    each window is centred on its own mean and divided by its own spread. ``"last"`` only subtracts the
    window's last value (as NLinear does). Either way a level shift between training and serving does not
    move the network off the range it was trained on. ``"none"`` (or False) is the identity; True means
    ``"meanstd"``.
    """

    MODES = ("none", "last", "meanstd")

    def __init__(self, mode: str | bool, eps: float = 1e-5) -> None:
        super().__init__()
        mode = {True: "meanstd", False: "none"}.get(mode, mode) if isinstance(mode, bool) else mode
        if mode not in self.MODES:
            raise ValueError(f"unknown normalisation {mode!r}; choose one of {self.MODES}")
        self.mode, self.eps = mode, eps

    def normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        # x: (B, L) -> (B, L), with (shift, scale) each (B, 1)
        if self.mode == "none":
            return x, (torch.zeros_like(x[:, :1]), torch.ones_like(x[:, :1]))
        if self.mode == "last":
            last = x[:, -1:]
            return x - last, (last, torch.ones_like(last))
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        return (x - mean) / std, (mean, std)

    def denormalise(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        shift, scale = stats  # y: (..., B, H); shift and scale (B, 1) broadcast over leading dims
        return y * scale + shift


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
