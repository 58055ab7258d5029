"""Fitting one named model on a task's train + validation part and forecasting its test windows."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..forecaster import FAST_HPARAMS, FAST_TRAINING, Forecaster, default_training, fast_hparams
from ..gate import Gate, default_gate, input_length
from ..models import MODELS
from ..protocol import Task
from ..train import TrainConfig, TrainResult

__all__ = ["FAST_HPARAMS", "FAST_TRAINING", "Plan", "Run", "fit_and_forecast", "plan_model", "training_for"]


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one entry of the model list is run: which registry model, on which window, with which hparams."""

    label: str  # the name the user asked for, used in tables and metrics.json
    model: str  # the registry name actually fitted
    window: int
    hparams: dict[str, Any]
    note: str = ""
    fast: bool = False
    scaler: str = "standard"  # the Forecaster's global scaler: standard (z) or minmax
    gate: Gate | str | None = "default"  # the Forecaster's gate: "default" (forecaster.gate.default_gate) or as given

    @property
    def trainable(self) -> bool:
        return MODELS[self.model].trainable

    @property
    def resolved_gate(self) -> Gate | None:
        return default_gate(self.model) if isinstance(self.gate, str) else self.gate

    @property
    def input_length(self) -> int:
        """Points one forecast of this plan reads: its window, and its gate's recent past."""
        return input_length(self.window, self.resolved_gate)


@dataclasses.dataclass(frozen=True)
class Run:
    """One fit of one plan with one seed, and its forecasts of the task's test windows in original units."""

    plan: Plan
    seed: int
    pred: np.ndarray  # (N, H) original units
    fit_seconds: float
    train_result: TrainResult | None
    forecaster: Forecaster


def plan_model(
    name: str,
    window: int,
    season: int | None,
    fast: bool = False,
    hparams: Mapping[str, Any] | None = None,
    gate: Gate | str | None = "default",
) -> Plan:
    """Seasonal naive looks one season back (its input is one season long); without a season it is plain naive.

    ``gate`` applies to the learned models; the baselines always keep their default (none)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if name == "seasonal_naive":
        if season is None:
            return Plan(name, "naive", window, {}, "no season (a day exceeds 2,000 steps): plain naive")
        return Plan(name, name, season, {"period": season}, f"period {season} steps (one day)")
    chosen = fast_hparams(name) if fast and MODELS[name].trainable else {}
    if hparams and MODELS[name].trainable:
        chosen = {**chosen, **hparams}
    return Plan(name, name, window, chosen, fast=fast, gate=gate if MODELS[name].trainable else "default")


def training_for(plan: Plan, overrides: Mapping[str, Any], seed: int, progress: bool = False) -> TrainConfig:
    """The model's own default training (tiny with --fast), with the caller's overrides and seed; ``progress``:
    an epoch bar on a terminal."""
    base = FAST_TRAINING if plan.fast else default_training(plan.model)
    return dataclasses.replace(base, **{**overrides, "seed": seed, "progress": None if progress else False})


def fit_and_forecast(
    plan: Plan,
    task: Task,
    overrides: Mapping[str, Any],
    seed: int = 0,
    horizon: int | None = None,
    progress: bool = False,
) -> Run:
    """Fit on train + validation once, then forecast every test origin; ``progress``: an epoch bar on a terminal.

    Closed-form models (naive, AR) use every train + validation window; networks train on the train windows
    and stop early on the validation windows, so the validation part is used by both, as BENCHMARK.md asks.
    """
    borders = task.borders
    val_ratio = (borders.val_end - borders.train_end) / borders.val_end if plan.trainable else 0.0
    forecaster = Forecaster(
        plan.model,
        plan.window,
        horizon or task.horizon,
        plan.scaler,
        step=task.step,
        max_gap=None,
        val_ratio=val_ratio,
        training=training_for(plan, overrides, seed, progress),
        gate=plan.resolved_gate,
        **plan.hparams,
    )
    t0 = time.perf_counter()
    forecaster.fit(task.history())
    seconds = time.perf_counter() - t0
    pred = forecaster.predict(task.inputs(forecaster.input_length))  # the window, and the gate's recent past
    result = forecaster.train_result if plan.trainable else None
    return Run(plan, seed, pred, seconds, result, forecaster)
