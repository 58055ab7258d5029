"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..protocol import Task
from .evaluate import Evaluation, SingleStep, WindowResult

__all__ = [
    "draw_all",
    "plot_convergence",
    "plot_forecasts",
    "plot_horizon",
    "plot_sample_window",
    "plot_series",
    "plot_single_step",
    "plot_worst",
]

CONTEXT = 36  # input points shown before a forecast


def _times(task: Task, idx: np.ndarray) -> np.ndarray:
    return task.start.to_datetime64() + np.asarray(idx, dtype=np.int64) * task.step.to_timedelta64()


def _at(task: Task, i: int) -> pd.Timestamp:
    return task.start + int(i) * task.step


def _mark(ax: Axes, task: Task, i: int, **style: object) -> None:
    """A vertical line at index ``i`` (matplotlib's stubs want a float; dates convert through its units)."""
    ax.axvline(_times(task, np.array([i]))[0], **style)  # type: ignore[arg-type]


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_series(task: Task, name: str, path: Path) -> Path:
    fig = Figure(figsize=(11, 3.5))
    ax = fig.add_subplot()
    ax.plot(_times(task, np.arange(len(task.values))), task.values, lw=0.6, color="0.25")
    b = task.borders
    for lo, hi, label, colour in (
        (b.train_end, b.val_end, "validation", "tab:orange"),
        (b.val_end, b.n, "test", "tab:red"),
    ):
        span = _times(task, np.array([lo, hi - 1]))
        ax.axvspan(span[0], span[1], color=colour, alpha=0.12, label=label)
    ax.legend(loc="lower left", fontsize=8)
    ax.set(title=f"{name}: train (unshaded), validation and test", ylabel="value")
    return _save(fig, path)


def plot_sample_window(task: Task, window: int, path: Path) -> Path:
    o = int(task.origins[0])
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    ax.plot(_times(task, np.arange(o - window, o)), task.values[o - window : o], "o-", ms=2, label="input window")
    ax.plot(
        _times(task, o + np.arange(task.horizon)), task.targets()[0], "o-", ms=3, label=f"{task.horizon}-step target"
    )
    ax.set(title=f"one sample: a window of {window} points and its {task.horizon}-step target", ylabel="value")
    ax.legend()
    return _save(fig, path)


def plot_single_step(single: SingleStep, task: Task, path: Path, points: int = 300) -> Path:
    fig = Figure(figsize=(11, 3.5))
    loss, fit = fig.add_subplot(1, 3, 1), fig.add_subplot(1, 3, (2, 3))
    result = single.run.train_result
    if result is not None:
        epochs = np.arange(1, len(result.train_loss) + 1)
        loss.plot(epochs, result.train_loss, "o-", label="train")
        loss.plot(epochs, result.val_loss, "o-", label="validation")
    loss.set(title="single-step LSTM: loss per epoch", xlabel="epoch", ylabel="MSE (z)")
    loss.legend()
    n = min(points, len(task.origins))
    t = _times(task, task.origins[:n])
    fit.plot(t, single.truth[:n], lw=1, color="0.2", label="actual")
    fit.plot(t, single.run.pred[:n, 0], lw=1, color="tab:orange", label="1-step forecast")
    fit.set(title="1-step forecast vs actual over the start of the test part", ylabel="value")
    fit.legend()
    return _save(fig, path)


def _grid(count: int, cols: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    rows = max(1, -(-count // cols))
    fig = Figure(figsize=(width * cols, height * rows))
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(count)]


def _draw_window(ax: Axes, task: Task, o: int, pred: np.ndarray, color: str = "tab:orange") -> None:
    lo = max(0, o - CONTEXT)
    span = np.arange(lo, min(len(task.values), o + task.horizon))
    ax.plot(_times(task, span), task.values[span], lw=1, color="0.2")
    ax.plot(_times(task, o + np.arange(task.horizon)), pred, "o-", ms=2, lw=1, color=color)
    _mark(ax, task, o, color="0.6", lw=0.8, ls=":")
    ax.tick_params(axis="x", labelsize=7, labelrotation=30)


def plot_forecasts(result: WindowResult, task: Task, path: Path, count: int = 4) -> Path:
    """One row per model, one column per origin (spread evenly over the test part)."""
    picks = np.linspace(0, len(task.origins) - 1, count).astype(int)
    items = [(label, m, int(i)) for label, m in result.models.items() for i in picks]
    fig, axes = _grid(len(items), count, 3.2, 2.3)
    for ax, (label, model, i) in zip(axes, items, strict=True):
        _draw_window(ax, task, int(task.origins[i]), model.runs[0].pred[i])
        ax.set_title(f"{label} at {_at(task, int(task.origins[i])):%m-%d %H:%M}", fontsize=8)
    fig.suptitle(f"12-step forecasts (orange) vs truth (grey), window {result.window}")
    return _save(fig, path)


def plot_horizon(result: WindowResult, path: Path) -> Path:
    fig = Figure(figsize=(11, 3.8))
    for i, metric in enumerate(("mse", "mae")):
        ax = fig.add_subplot(1, 2, i + 1)
        for label, model in result.models.items():
            values = model.scores["z"][f"{metric}_per_h"]
            ax.plot(np.arange(1, len(values) + 1), values, "o-", ms=3, label=label)
        ax.set(title=f"{metric.upper()} per horizon step (z-scale), window {result.window}", xlabel="step ahead")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def plot_convergence(result: WindowResult, path: Path) -> Path:
    fig = Figure(figsize=(11, 3.8))
    by_epoch, by_time = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for label, model in result.models.items():
        tr = model.runs[0].train_result
        if tr is None or not tr.val_loss:
            continue
        by_epoch.plot(np.arange(1, len(tr.val_loss) + 1), tr.val_loss, "o-", ms=3, label=label)
        by_time.plot(np.cumsum(tr.epoch_seconds), tr.val_loss, "o-", ms=3, label=label)
    by_epoch.set(title="validation loss per epoch", xlabel="epoch", ylabel="MSE (z)")
    by_time.set(title="validation loss per second of training", xlabel="seconds")
    by_time.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def plot_worst(result: WindowResult, task: Task, path: Path) -> Path:
    items = [(label, m, int(w)) for label, m in result.models.items() for w in m.measures["worst"]]
    fig, axes = _grid(len(items), 3, 4, 2.6)
    for ax, (label, model, w) in zip(axes, items, strict=True):
        _draw_window(ax, task, int(task.origins[w]), model.runs[0].pred[w], "tab:red")
        ax.set_title(f"{label}: window at {_at(task, int(task.origins[w])):%Y-%m-%d %H:%M}", fontsize=8)
    return _save(fig, path)


def draw_all(ev: Evaluation, out: Path) -> dict[str, str]:
    """Every figure of the report, written under ``out``; returns figure key -> file name."""
    files = {
        "series": plot_series(ev.task, ev.name, out / "series.png"),
        "sample": plot_sample_window(ev.task, ev.config.windows[0], out / "sample_window.png"),
    }
    if ev.single_step is not None:
        files["single_step"] = plot_single_step(ev.single_step, ev.task, out / "single_step_lstm.png")
    for r in ev.results:
        files[f"forecasts_{r.window}"] = plot_forecasts(r, ev.task, out / f"forecasts_w{r.window}.png")
        files[f"horizon_{r.window}"] = plot_horizon(r, out / f"horizon_w{r.window}.png")
        files[f"convergence_{r.window}"] = plot_convergence(r, out / f"convergence_w{r.window}.png")
        files[f"worst_{r.window}"] = plot_worst(r, ev.task, out / f"worst_w{r.window}.png")
    return {k: p.name for k, p in files.items()}
