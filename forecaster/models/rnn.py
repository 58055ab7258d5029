"""LSTM and GRU forecasters: input -> recurrent layers -> linear head on the last hidden state."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..catalog import RNNConfig
from .base import ForecastModel
from .layers import InstanceNorm


class RNNNet(ForecastModel):
    """Shared body of the LSTM and GRU models; subclasses only choose the cell."""

    cell: ClassVar[type[nn.LSTM] | type[nn.GRU]]

    def __init__(self, window: int, horizon: int, config: RNNConfig) -> None:
        super().__init__(window, horizon, config)
        self.norm = InstanceNorm(config.revin)
        self.rnn = self.cell(
            input_size=1,
            hidden_size=config.hidden,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden, horizon)

    def window_floats(self, training: bool) -> int:
        # The input's projection onto the cell's gates (the LSTM's four, the GRU's three), at every step of the
        # window and in every layer.
        return self.window * self.rnn.hidden_size * 4 * self.rnn.num_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, 1) -> (B, H)
        z, stats = self.norm.normalise(x[:, :, 0])  # (B, W)
        out, _ = self.rnn(z.unsqueeze(-1))  # (B, W, hidden)
        return self.norm.denormalise(self.head(out[:, -1]), stats)  # (B, H)


class LSTMNet(RNNNet):
    name = "lstm"
    cell = nn.LSTM


class GRUNet(RNNNet):
    name = "gru"
    cell = nn.GRU
