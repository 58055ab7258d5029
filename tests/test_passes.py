"""A model of large activations forecasts and trains a large batch in passes of bounded memory, with the same results:
the same forecasts, bit for bit, and the same gradients up to rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promcast.forecaster import Forecaster, TrainConfig
from promcast.forecaster.models import base, build_model
from promcast.forecaster.synthetic import diurnal
from promcast.forecaster.train import LOSSES, _step

TINY = {"d_model": 8, "heads": 2, "layers": 1, "ff": 16}


def test_the_networks_of_small_activations_take_any_batch_in_one_pass() -> None:
    assert build_model("mlp", 288, 12).pass_rows() is None  # the production default's forecasts never change
    assert build_model("nlinear", 288, 12).pass_rows(training=True) is None


def test_a_day_of_attention_is_forecast_and_trained_in_passes_of_bounded_memory() -> None:
    net = build_model("transformer", 288, 12)  # 4 heads over 288 tokens: 330,000 scores a window and layer
    assert net.pass_rows() == 202
    assert net.pass_rows(training=True) == 50  # each layer's softmax, dropout mask and output kept for the backward


def test_forecasts_in_passes_equal_the_whole_batch_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    training = TrainConfig(epochs=1, max_batches=2, progress=False)
    f = Forecaster("transformer", window=48, horizon=12, step="10min", training=training, **TINY)
    f.fit(diurnal(900, "10min", seed=2))
    windows = np.lib.stride_tricks.sliding_window_view(diurnal(900, "10min", seed=5).to_numpy(), f.input_length)[:300]
    whole = f.predict(windows)  # 300 windows, and the gate's 3,600 recent ones, each in one pass
    floats = f._model.window_floats(training=False)
    monkeypatch.setattr(base, "PASS_FLOATS", 64 * floats)  # passes of at most 64 windows
    assert f._model.pass_rows() == 64
    assert np.array_equal(f.predict(windows), whole)


def test_a_batch_trained_in_parts_has_the_whole_batch_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    net = build_model("transformer", 48, 12, dropout=0.0, **TINY)  # no dropout: both runs draw the same masks
    x, y = torch.randn(256, 48, 1), torch.randn(256, 12)
    loss_fn = LOSSES["mse"]()

    def gradients() -> tuple[float, list[torch.Tensor]]:
        net.zero_grad()
        loss = _step(net, x, y, loss_fn)
        return loss, [p.grad.clone() for p in net.parameters() if p.grad is not None]

    loss, whole = gradients()
    monkeypatch.setattr(base, "PASS_FLOATS", 50 * net.window_floats(training=True))  # 6 parts of 42 or 43 windows
    parted_loss, parted = gradients()
    assert parted_loss == pytest.approx(loss, rel=1e-6)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(parted, whole, strict=True))
