"""The one training loop: Adam, gradient clipping, early stopping on validation loss, best weights restored."""

from __future__ import annotations

import copy
import dataclasses
import sys
import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .models import ForecastModel

__all__ = ["LOSSES", "TrainConfig", "TrainResult", "pick_device", "seed_everything", "train"]

LOSSES = {"mse": nn.MSELoss, "mae": nn.L1Loss, "huber": nn.HuberLoss}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    loss: str = "mse"
    clip: float = 1.0
    patience: int = 5
    max_batches: int = 0  # per epoch; 0 means every window every epoch
    refit: bool = False  # after early stopping, retrain from scratch on every window for the best epoch count
    seed: int = 0
    device: str | None = None  # None: CUDA when present, else CPU
    progress: bool | None = None  # None: a bar only on a terminal

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {sorted(LOSSES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.patience < 1:
            raise ValueError(f"epochs, batch_size, patience must be >= 1 and lr > 0: {self}")


@dataclasses.dataclass(frozen=True)
class TrainResult:
    train_loss: list[float]
    val_loss: list[float]
    epoch_seconds: list[float]
    best_epoch: int  # 0-based; -1 for models fitted without gradients
    best_val_loss: float
    device: str
    refit_seconds: float = 0.0


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def pick_device(requested: str | None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _batches(n: int, size: int, rng: torch.Generator, limit: int) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=rng)
    if limit:
        order = order[: limit * size]
    yield from order.split(size)


@torch.no_grad()
def _evaluate(model: ForecastModel, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, size: int) -> float:
    model.eval()
    total = 0.0
    for lo in range(0, len(X), size):
        pred = model.in_passes(model, X[lo : lo + size])  # a model of large activations: in smaller passes
        total += float(loss_fn(pred, y[lo : lo + size])) * len(X[lo : lo + size])
    return total / max(1, len(X))


def _step(model: ForecastModel, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module) -> float:
    """Accumulate the gradient of one batch's mean loss; returns that loss. A batch larger than the model's
    ``pass_rows(training=True)`` goes through in equal parts, each part's loss weighed by its share of the batch,
    so that the backward pass keeps one part's activations, not the batch's."""
    rows = model.pass_rows(training=True)
    if rows is None or len(X) <= rows:
        loss = model.training_loss(X, y, loss_fn)
        loss.backward()
        return loss.item()
    parts = -(-len(X) // rows)
    total = 0.0
    for xs, ys in zip(X.tensor_split(parts), y.tensor_split(parts), strict=True):
        loss = model.training_loss(xs, ys, loss_fn) * (len(xs) / len(X))
        loss.backward()
        total += loss.item()
    return total


def train(
    model: ForecastModel,
    train_xy: tuple[np.ndarray, np.ndarray],
    val_xy: tuple[np.ndarray, np.ndarray],
    config: TrainConfig,
) -> TrainResult:
    """Fit ``model`` on scaled windows. Returns per-epoch losses and times; the best weights are kept."""
    device = pick_device(config.device)
    seed_everything(config.seed)
    if not model.trainable:
        model.fit_direct(*train_xy)
        model.to(device).eval()
        return TrainResult([], [], [], -1, float("nan"), str(device))

    def tensors(xy: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        X = torch.from_numpy(np.array(xy[0], dtype=np.float32)).to(device).unsqueeze(-1)  # (N, W, 1)
        return X, torch.from_numpy(np.array(xy[1], dtype=np.float32)).to(device)  # (N, H)

    (Xt, yt), (Xv, yv) = tensors(train_xy), tensors(val_xy)
    if len(Xt) == 0:
        raise ValueError("no training windows: the series is too short or every window crosses a long gap")
    has_val = len(Xv) > 0
    model.to(device)
    loss_fn = LOSSES[config.loss]()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = torch.Generator().manual_seed(config.seed)
    show = sys.stderr.isatty() if config.progress is None else config.progress
    train_losses: list[float] = []
    val_losses: list[float] = []
    seconds: list[float] = []
    best, best_epoch, best_state = float("inf"), 0, model.state_dict()
    bar = tqdm(range(config.epochs), desc=f"train {model.name}", disable=not show, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for idx in _batches(len(Xt), config.batch_size * model.batch_multiplier, rng, config.max_batches):
            idx = idx.to(device)
            opt.zero_grad(set_to_none=True)
            loss = _step(model, Xt[idx], yt[idx], loss_fn)
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            opt.step()
            total, count = total + loss * len(idx), count + len(idx)
        train_losses.append(total / count)
        # Without validation windows there is no early stopping: all epochs run and the last weights stay.
        val_losses.append(_evaluate(model, Xv, yv, loss_fn, 4096) if has_val else train_losses[-1])
        seconds.append(time.perf_counter() - t0)
        bar.set_postfix(train=f"{train_losses[-1]:.4f}", val=f"{val_losses[-1]:.4f}")
        if not has_val:
            best, best_epoch = val_losses[-1], epoch
        elif val_losses[-1] < best:
            best, best_epoch, best_state = val_losses[-1], epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    bar.close()
    if has_val:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(train_losses, val_losses, seconds, best_epoch, best, str(device))
