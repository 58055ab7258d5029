"""The work of `promcast evaluate`: every model and baseline on the same rolling-origin test windows, measured."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ..progress import Stage, quiet
from ..protocol import Protocol, Task, error_metrics, make_task, score, season_for
from .fitting import Plan, Run, fit_and_forecast, plan_model
from .measures import convergence, lag_per_horizon, peak_error, smoothness, stability, worst_windows

__all__ = [
    "EvalConfig",
    "Evaluation",
    "ModelResult",
    "SingleStep",
    "WindowResult",
    "Work",
    "evaluate",
    "plan_work",
    "run_work",
]


INTERVAL_LEVELS = (0.8, 0.95)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    models: tuple[str, ...]
    windows: tuple[int, ...]
    seeds: int = 3
    stride: int | None = None  # None: BENCHMARK.md's max(1, test_points // 1500)
    fast: bool = False
    training: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of each model's defaults
    # Overrides of every network's training but the production default's, under ``training``: the caps that keep a
    # run short. The default trains as it ships, which takes seconds, so that its scores are the ones it serves with.
    caps: dict[str, Any] = dataclasses.field(default_factory=dict)
    protocol: Protocol = dataclasses.field(default_factory=Protocol)
    default_model: str = ""  # marked as the production default in the report
    scaler: str = "standard"  # the global scaler every model is fitted with (scores stay on the train z-scale)

    def __post_init__(self) -> None:
        if not self.models or not self.windows or self.seeds < 1:
            raise ValueError(f"need at least one model, one window and one seed: {self}")

    def overrides(self, model: str) -> dict[str, Any]:
        """The overrides of ``model``'s own training: ``training``, over ``caps`` unless it is the default."""
        return self.training if model == self.default_model else {**self.caps, **self.training}


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


@dataclasses.dataclass(frozen=True)
class Work:
    """What an evaluation will do, known before any fit: the task, each window's plans, and its stages in order."""

    task: Task
    season: int | None
    plans: dict[int, list[Plan]]  # per input window, one plan per model
    seeds: int
    single_step: bool  # the single-step LSTM too

    def seeds_of(self, plan: Plan) -> int:
        return self.seeds if plan.trainable else 1  # closed-form models fit once

    @property
    def fits(self) -> int:
        return sum(self.seeds_of(p) for ps in self.plans.values() for p in ps) + self.single_step

    @property
    def stages(self) -> int:
        """Each fit, and the scoring of each plan."""
        return self.fits + sum(len(ps) for ps in self.plans.values())


def plan_work(values: np.ndarray, start: pd.Timestamp, step: pd.Timedelta, config: EvalConfig) -> Work:
    """Every plan of every window, and the rolling origins they are all scored on (ValueError: too short)."""
    season = season_for(step)
    plans = {
        w: [dataclasses.replace(plan_model(m, w, season, config.fast), scaler=config.scaler) for m in config.models]
        for w in config.windows
    }
    longest = max(p.input_length for ps in plans.values() for p in ps)
    task = make_task(values, start, step, config.protocol, config.stride, min_history=longest)
    return Work(task, season, plans, config.seeds, "lstm" in config.models)


def evaluate(name: str, values: np.ndarray, start: pd.Timestamp, step: pd.Timedelta, config: EvalConfig) -> Evaluation:
    """Fit every model for every window once per seed on train + validation, and score them on one set of origins."""
    return run_work(name, plan_work(values, start, step, config), config)


def run_work(name: str, work: Work, config: EvalConfig, stage: Stage = quiet, bars: bool = False) -> Evaluation:
    """Do ``work``, telling ``stage`` what begins; ``bars``: each training's epoch bar (on a terminal)."""
    several = len(work.plans) > 1
    results = []
    for w, ps in work.plans.items():
        where = f" (window {w})" if several else ""
        results.append(WindowResult(w, {p.label: _run_plan(p, work, config, stage, where, bars) for p in ps}))
    single = _single_step(work.task, config, stage, bars) if work.single_step else None
    return Evaluation(name, work.task, config, work.season, results, single)


def _run_plan(plan: Plan, work: Work, config: EvalConfig, stage: Stage, where: str, bars: bool) -> ModelResult:
    task, seeds = work.task, work.seeds_of(plan)
    runs = []
    for seed in range(seeds):
        stage(f"fitting {plan.label} seed {seed + 1} of {seeds}{where}" if plan.trainable else f"fitting {plan.label}")
        runs.append(fit_and_forecast(plan, task, config.overrides(plan.model), seed, progress=bars))
    stage(f"scoring {plan.label}{where}")
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
    inputs = task.inputs(run.forecaster.input_length)
    _, bounds = run.forecaster.predict_interval(inputs, INTERVAL_LEVELS, point=run.pred)  # forecast once, not twice
    out = {}
    for level, (lo, hi) in bounds.items():
        covered = float(np.mean((truth >= lo) & (truth <= hi)))
        width = float(np.mean(hi - lo) / task.scaler.scale)
        out[f"{level:g}"] = {"coverage": covered, "z_width": width}
    return out


def _single_step(task: Task, config: EvalConfig, stage: Stage = quiet, bars: bool = False) -> SingleStep:
    base = plan_model("lstm", config.windows[0], None, config.fast)
    plan = dataclasses.replace(base, label="lstm_1step")
    stage("fitting lstm_1step (one step ahead)")
    run = fit_and_forecast(plan, task, config.overrides("lstm"), seed=0, horizon=1, progress=bars)
    truth = task.targets()[:, :1]
    return SingleStep(run, truth[:, 0], score(run.pred, truth, task.scaler))
