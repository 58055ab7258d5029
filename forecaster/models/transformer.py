"""Transformer encoder: input projection, sinusoidal positions, nn.TransformerEncoder, linear head.

With ``patch_len > 1`` the window is cut into patches of consecutive steps before the projection, as in
PatchTST (Nie et al., ICLR 2023); ``patch_len = 1`` is the plain one-token-per-step encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from ..catalog import TransformerConfig
from .base import ForecastModel
from .layers import InstanceNorm, SinusoidalPositions


class TransformerNet(ForecastModel):
    name = "transformer"

    def __init__(self, window: int, horizon: int, config: TransformerConfig) -> None:
        super().__init__(window, horizon, config)
        if config.d_model % config.heads:
            raise ValueError(f"d_model ({config.d_model}) must be divisible by heads ({config.heads})")
        if not 1 <= config.patch_len <= window or config.stride < 1:
            raise ValueError(f"need 1 <= patch_len <= window and stride >= 1, got {config.patch_len}, {config.stride}")
        self.patch_len, self.stride = config.patch_len, config.stride
        self.heads, self.layers = config.heads, config.layers
        self.tokens = (window - config.patch_len) // config.stride + 1
        self.norm = InstanceNorm(config.revin)
        self.project = nn.Linear(config.patch_len, config.d_model)
        self.positions = SinusoidalPositions(config.d_model, self.tokens)
        layer = nn.TransformerEncoderLayer(
            config.d_model, config.heads, config.ff, config.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.head = nn.Linear(self.tokens * config.d_model, horizon)

    def window_floats(self, training: bool) -> int:
        # Attention holds heads x tokens² scores a window: inference one layer's scores and softmax at a time;
        # training keeps every layer's softmax, dropout mask and output for the backward pass.
        return self.heads * self.tokens**2 * (4 * self.layers if training else 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, 1) -> (B, H)
        z, stats = self.norm.normalise(x[:, :, 0])  # (B, W)
        patches = z.unfold(1, self.patch_len, self.stride)  # (B, T, P)
        h = self.encoder(self.positions(self.project(patches)))  # (B, T, D)
        return self.norm.denormalise(self.head(h.flatten(1)), stats)  # (B, H)
