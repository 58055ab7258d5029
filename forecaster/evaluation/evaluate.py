"""The work of `promcast evaluate`: every model and baseline on the same rolling-origin test windows, measured."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ..protocol import Protocol, Task, error_metrics, make_task, score, season_for
from .fitting import Plan, Run, fit_and_forecast, plan_model
from .measures import convergence, lag_per_horizon, peak_error, smoothness, stability, worst_windows

__all__ = ["EvalConfig", "Evaluation", "ModelResult", "SingleStep", "WindowResult", "evaluate"]


INTERVAL_LEVELS = (0.8, 0.95)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    models: tuple[str, ...]
    windows: tuple[int, ...]
    seeds: int = 3
    stride: int | None = None  # None: BENCHMARK.md's max(1, test_points // 1500)
    fast: bool = False
    training: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of each model's defaults
    protocol: Protocol = dataclasses.field(default_factory=Protocol)
    default_model: str = ""  # marked as the production default in the report
    scaler: str = "standard"  # the global scaler every model is fitted with (scores stay on the train z-scale)

    def __post_init__(self) -> None:
        if not self.models or not self.windows or self.seeds < 1:
            raise ValueError(f"need at least one model, one window and one seed: {self}")


@dataclasses.dataclass(frozen=True)
class ModelResult:
    plan: Plan
    runs: list[Run]  # one per seed; closed-form models run once
    scores: dict[str, Any]  # of the first seed, z-scale and original units
    measures: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class WindowResult:
    window: int
    models: dict[str, ModelResult]


@dataclasses.dataclass(frozen=True)
class SingleStep:
    """The single-step LSTM of the week plan: one step ahead only."""

    run: Run
    truth: np.ndarray  # (N,) original units, at the task's origins
    scores: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    name: str
    task: Task
    config: EvalConfig
    season: int | None
    results: list[WindowResult]
    single_step: SingleStep | None


def evaluate(name: str, values: np.ndarray, start: pd.Timestamp, step: pd.Timedelta, config: EvalConfig) -> Evaluation:
    """Fit every model for every window once per seed on train + validation, and score them on one set of origins."""
    season = season_for(step)
    plans = {
        w: [dataclasses.replace(plan_model(m, w, season, config.fast), scaler=config.scaler) for m in config.models]
        for w in config.windows
    }
    longest = max(p.input_length for ps in plans.values() for p in ps)
    task = make_task(values, start, step, config.protocol, config.stride, min_history=longest)
    results = [WindowResult(w, {p.label: _run_plan(p, task, config) for p in ps}) for w, ps in plans.items()]
    single = _single_step(task, config) if "lstm" in config.models else None
    return Evaluation(name, task, config, season, results, single)


def _run_plan(plan: Plan, task: Task, config: EvalConfig) -> ModelResult:
    seeds = range(config.seeds) if plan.trainable else range(1)
    runs = [fit_and_forecast(plan, task, config.training, seed) for seed in seeds]
    truth = task.targets()
    return ModelResult(plan, runs, score(runs[0].pred, truth, task.scaler), _measures(runs, task, truth))


def _measures(runs: list[Run], task: Task, truth: np.ndarray) -> dict[str, Any]:
    z = task.scaler.transform
    z_pred, z_truth = z(runs[0].pred), z(truth)
    maes = [error_metrics(z(r.pred), z_truth)["mae"] for r in runs]
    lags = lag_per_horizon(z_pred, task.origins, z(task.values), max_shift=2 * task.horizon)
    result = runs[0].train_result
    return {
        "fit_seconds": [r.fit_seconds for r in runs],
        "seed_z_mae": maes,
        "convergence": convergence(result.val_loss, result.epoch_seconds) if result else None,
        "stability": stability(maes) if len(runs) > 1 else None,
        "smoothness": smoothness(z_pred, z_truth),
        "lag": {"per_h": lags, "mean": float(np.mean(lags))},
        "peaks": peak_error(z_pred, z_truth),
        "worst": worst_windows(z_pred, z_truth, k=3, origins=task.origins).tolist(),
        "intervals": _intervals(runs[0], task, truth),
    }


def _intervals(run: Run, task: Task, truth: np.ndarray) -> dict[str, Any] | None:
    """Empirical coverage and mean width (z-scale) of the split-conformal bands at 0.8 and 0.95, if calibrated."""
    if run.forecaster.calibration is None or run.pred.shape[1] != run.forecaster.horizon:
        return None
    _, bounds = run.forecaster.predict_interval(task.inputs(run.forecaster.input_length), INTERVAL_LEVELS)
    out = {}
    for level, (lo, hi) in bounds.items():
        covered = float(np.mean((truth >= lo) & (truth <= hi)))
        width = float(np.mean(hi - lo) / task.scaler.scale)
        out[f"{level:g}"] = {"coverage": covered, "z_width": width}
    return out


def _single_step(task: Task, config: EvalConfig) -> SingleStep:
    base = plan_model("lstm", config.windows[0], None, config.fast)
    plan = dataclasses.replace(base, label="lstm_1step")
    run = fit_and_forecast(plan, task, config.training, seed=0, horizon=1)
    truth = task.targets()[:, :1]
    return SingleStep(run, truth[:, 0], score(run.pred, truth, task.scaler))
