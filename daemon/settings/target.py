"""A target's settings: its query, step and model, and the guard, bursts and drift retrain that act on it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from promcast.daemon.settings.base import NAME, Strict, cron_trigger
from promcast.forecaster import (
    DEFAULT_HORIZON,
    DEFAULT_MODEL,
    DEFAULT_WINDOW,
    MODEL_NAMES,
    PRETRAINED_MODEL,
    pretrained_meta,
)
from promcast.forecaster.gate import default_gate, input_length


class GuardSettings(Strict):
    """Per series: publish naive (or seasonal naive) while the model has been losing to it (daemon/cycle/guard.py)."""

    enabled: bool = Field(True, description="run the guard")
    window: int = Field(288, ge=2, description="scorings the per-series rolling MAE spans; none decides before them")
    margin: float = Field(
        0.25, ge=0, le=10, description="relative MAE excess over the best fallback that leaves the model"
    )
    patience: int = Field(36, ge=1, description="consecutive scorings that must agree before a switch, either way")


class BurstSettings(Strict):
    """Per series: flag actual values far outside the forecasts made for them (daemon/cycle/bursts.py)."""

    enabled: bool = Field(True, description="detect bursts")
    threshold: float = Field(
        0.5, ge=0, description="band widths outside the widest interval that make a step a burst candidate"
    )
    persistence: int = Field(2, ge=1, description="consecutive candidate steps that make a burst")
    spike: float | None = Field(
        10.0, ge=0, description="band widths at which a single step is a burst at once; null: never"
    )

    @model_validator(mode="after")
    def _spike(self) -> BurstSettings:
        if self.spike is not None and self.spike < self.threshold:
            raise ValueError(f"bursts.spike {self.spike:g} must be at least bursts.threshold {self.threshold:g}")
        return self


class DriftSettings(Strict):
    """Retrain when the target's live skill stays low (opt in: each retrain is a training run in a child)."""

    enabled: bool = Field(False, description="retrain on drift")
    skill_below: float = Field(0.0, ge=-10, le=1, description="promcast_forecast_skill_ratio under this is drift")
    cycles: int = Field(60, ge=1, description="consecutive cycles the skill must stay under skill_below")
    cooldown_seconds: float = Field(21_600.0, gt=0, description="the least time between two drift retrains")


class TargetSettings(Strict):
    name: str = Field(description="the target label of its gauges, and its folder in the model store")
    query: str = Field(min_length=1, description="PromQL query whose series are forecast")
    step_seconds: float = Field(60.0, gt=0, description="seconds between two points of a series")
    interval_seconds: float | None = Field(None, gt=0, description="how often to forecast; default: every step")
    window: int = Field(DEFAULT_WINDOW, gt=0, description="input steps the model reads for one forecast")
    horizon: int = Field(
        DEFAULT_HORIZON,
        ge=1,
        le=10_000,
        description="steps forecast ahead (h = 1..horizon); reach past your pods' start-up time to scale ahead of it",
    )
    history: timedelta = Field(timedelta(days=7), description="how far back to read when training")
    drop_labels: list[str] = Field(default_factory=list, description="labels that churn, e.g. pod")
    model: str = Field(
        DEFAULT_MODEL,
        description=f"the network to train for the target, or {PRETRAINED_MODEL!r}: serve the pretrained model that "
        "ships in the package, for good, never training",
    )
    first_model: Literal["pretrained", "train"] = Field(
        "pretrained",
        description="with no model in the store: serve the pretrained model from the first cycle and train the "
        "target's own in the background (the promotion rule replaces the pretrained one only if it beats it), or "
        "train first and forecast after; a target whose window or horizon the pretrained model lacks trains first",
    )
    own_model_retry_seconds: float = Field(
        21_600.0,
        gt=0,
        description="while the pretrained model serves a target that trains its own, how often to try again "
        "(on the source's clock) after a training that was not promoted or that failed",
    )
    hparams: dict[str, Any] = Field(default_factory=dict, description="the model's hyperparameters, passed at training")
    scaler: Literal["standard", "minmax"] = Field("standard", description="global scaling fitted on the history")
    torch_fallback: bool = Field(
        False,
        description="serve through torch an artifact the NumPy runtime refuses; logged",
    )
    epochs: int | None = Field(None, gt=0, description="training epochs; default: the model's own")
    required: bool = Field(
        False,
        description="/readyz waits for this target even while it has nothing to forecast (no usable series, or a "
        "query the source refuses); by default such a target is reported but does not hold readiness back",
    )
    max_gap: int = Field(5, ge=0, description="the longest gap inside a window filled as routine")
    max_lag: int = Field(
        1,
        ge=0,
        description="steps a series' last sample may lag the cycle's end and still be forecast; past it the series "
        "has stopped: its forecast is withdrawn and it counts as vanished (at most max_gap + 1)",
    )
    gap_interval_factor: float = Field(
        1.5, ge=1, description="interval widening for a series whose window bridges a gap longer than max_gap"
    )
    settle_seconds: float | None = Field(
        None,
        ge=0,
        description="seconds after each boundary before the cycle reads it, so that its scrapes have landed; "
        "default 5, or a tenth of the interval where that is shorter",
    )
    levels: list[float] = Field(default_factory=lambda: [0.8, 0.95], description="prediction interval levels")
    clip_negative: bool = Field(
        True, description="clip forecasts and bounds at 0 for a series whose input window is never negative"
    )
    quality_window: int = Field(288, ge=1, description="scored forecasts per step in the rolling quality")
    aci_gamma: float = Field(
        0.05, ge=0, le=0.5, description="step of each series' online band adaptation, in log width per scored value"
    )
    capacity_per_replica: float | None = Field(
        None, gt=0, description="load one replica serves; set it to publish promcast_recommended_replicas"
    )
    target_utilization: float = Field(
        1.0, gt=0, le=1, description="share of capacity_per_replica a replica is planned to carry (the HPA's target)"
    )
    min_replicas: int = Field(1, ge=0, description="the fewest replicas promcast_recommended_replicas recommends")
    max_replicas: int = Field(100, ge=1, description="the most replicas promcast_recommended_replicas recommends")
    replicas_level: float | None = Field(
        None, description="the interval level whose upper bound the replicas cover; one of levels; default: the widest"
    )
    startup_steps: int | None = Field(
        None,
        ge=0,
        description="steps a new replica takes to serve: the replicas cover the forecast that far ahead; "
        "default: the whole horizon",
    )
    retrain_cron: str | None = Field(
        None, description="retrain in the daemon on this crontab (5 fields, or 6 with seconds first); UTC"
    )
    guard: GuardSettings = Field(
        GuardSettings(), description="per series: publish a naive forecast while the model loses to it"
    )
    bursts: BurstSettings = Field(BurstSettings(), description="per series: flag values far outside their forecasts")
    drift_retrain: DriftSettings = Field(DriftSettings(), description="retrain when the live skill stays low")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"target name {v!r} must match {NAME.pattern}")
        return v

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not 0.5 <= x < 1.0]
        if bad:
            raise ValueError(f"interval levels must lie in [0.5, 1), got {bad}")
        return sorted(set(v))

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v not in MODEL_NAMES and v != PRETRAINED_MODEL:
            raise ValueError(f"unknown model {v!r}; choose one of {sorted([*MODEL_NAMES, PRETRAINED_MODEL])}")
        return v

    @field_validator("retrain_cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            cron_trigger(v)
        return v

    @property
    def input_length(self) -> int:
        """Steps one forecast reads: the model's window, and the recent past its gate scores (forecaster.gate)."""
        if self.model == PRETRAINED_MODEL:
            return int(pretrained_meta()["input_length"])
        return input_length(self.window, default_gate(self.model))

    @model_validator(mode="after")
    def _pretrained(self) -> TargetSettings:
        if self.model == PRETRAINED_MODEL:
            meta = pretrained_meta()
            if (self.window, self.horizon) != (meta["window"], meta["horizon"]):
                raise ValueError(
                    f"model {PRETRAINED_MODEL!r} reads window={meta['window']} and forecasts horizon={meta['horizon']};"
                    f" this target sets window={self.window} and horizon={self.horizon}"
                )
        return self

    @model_validator(mode="after")
    def _history(self) -> TargetSettings:
        steps = self.history.total_seconds() / self.step_seconds
        if steps < self.input_length + self.horizon:
            raise ValueError(
                f"history {self.history} holds {steps:.0f} steps; training needs at least input_length + horizon = "
                f"{self.input_length} + {self.horizon} (window {self.window}, the gate's recent past, the horizon)"
            )
        if self.settle >= self.interval:
            raise ValueError(f"settle_seconds {self.settle:g} must be shorter than the interval {self.interval:g}s")
        if self.max_lag > self.max_gap + 1:  # each cycle reads max_gap + 2 steps again: a longer lag is never seen
            raise ValueError(f"max_lag {self.max_lag} must be at most max_gap + 1 = {self.max_gap + 1}")
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} exceeds max_replicas {self.max_replicas}")
        if self.replicas_level is not None and self.replicas_level not in self.levels:
            raise ValueError(f"replicas_level {self.replicas_level:g} must be one of levels {self.levels}")
        if self.startup_steps is not None and self.startup_steps >= self.horizon:
            raise ValueError(f"startup_steps {self.startup_steps} must be shorter than the horizon {self.horizon}")
        return self

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.step_seconds)

    @property
    def day_steps(self) -> int | None:
        """Steps in a day, where the step divides a day and a day fits the input: seasonal naive's period."""
        steps = 86_400 / self.step_seconds
        return int(steps) if steps.is_integer() and steps <= self.input_length else None

    @property
    def interval(self) -> float:
        return self.interval_seconds or self.step_seconds

    @property
    def settle(self) -> float:
        return self.settle_seconds if self.settle_seconds is not None else min(5.0, self.interval / 10)
