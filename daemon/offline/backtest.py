"""``promcast backtest``: what a forecast-driven autoscaler would have done on a recorded series, and what it cost.

The series is split as the benchmark splits it (forecaster.protocol: train 70 %, validation 10 %); the model is
fitted on those 80 % (a frozen one, daemon.offline.replay_model, is not) and forecasts at every step of the last
20 %, each forecast seeing only the data before its origin. Four policies (daemon.cycle.autoscale) follow the
replay with the same settings:

- ``reactive``: the HPA on the actual load alone;
- ``forecast``: ``promcast_recommended_replicas`` on the model's upper bound at ``--level``;
- ``forecast_naive`` and ``forecast_linear``: the same signal with naive (the last value) and Prometheus's
  ``predict_linear`` (least squares over the last ``--linear-range`` steps) in place of the model, so that the
  model's own worth is visible.

Naive and predict_linear have no calibration of their own: their bands are split-conformal, the ``level``
quantile of their absolute errors per horizon step over the validation part. The model's bands are its own
calibration. The daemon's online adaptation of the bands (aci_gamma) and the guard's switch to a
fallback are not replayed: the backtest measures the calibrated forecast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from promcast.daemon.cycle.autoscale import Autoscaler, Replay, Scaling, needed, recommend, replay_metrics
from promcast.daemon.offline.baselines import baseline_uppers, linear_forecast
from promcast.daemon.offline.replay_model import Frozen, replay_model
from promcast.daemon.offline.report import INTERNAL
from promcast.daemon.offline.results import FittedModel
from promcast.forecaster import DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_WINDOW, MODEL_NAMES
from promcast.forecaster.data import RegularSeries
from promcast.forecaster.progress import Stage, quiet
from promcast.forecaster.protocol import Protocol, Task, inputs_at, make_task, window_for

__all__ = [
    "LEVELS",
    "POLICIES",
    "Accuracy",
    "Backtest",
    "BacktestModel",
    "BacktestResult",
    "BacktestSeries",
    "BacktestSettings",
    "PolicyMetrics",
    "ReplaySpan",
    "default_capacity",
    "default_scale_in",
    "linear_forecast",
    "run_backtest",
]

POLICIES = ("reactive", "forecast", "forecast_naive", "forecast_linear")
LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)  # the interval levels of the trade-off sweep
HPA_SCALE_IN_SECONDS = 300  # the HPA's default scale-down stabilisation window
REPLICAS_AT_MEAN = 5  # default capacity: the mean load of the fitted part needs this many replicas


@dataclass(frozen=True)
class Backtest:
    """What one backtest runs: the model, its horizon, the policies' settings and the level of their bands."""

    scaling: Scaling
    level: float = 0.95
    model: str = DEFAULT_MODEL
    window: int | None = None  # default: the daemon's DEFAULT_WINDOW for the default model, else the benchmark's
    horizon: int = DEFAULT_HORIZON
    linear_range: int | None = None  # predict_linear's range in steps; default: the horizon
    fast: bool = False  # tiny network and few epochs (tests)
    seed: int = 0
    frozen: Frozen | None = None  # a model replayed as loaded; its own window and horizon, ``model`` unused

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError(f"level must lie strictly between 0 and 1, got {self.level:g}")
        if self.scaling.startup_steps >= self.horizon:
            raise ValueError(
                f"startup_steps {self.scaling.startup_steps} must be shorter than the horizon {self.horizon}: the "
                "forecast must cover the step at which a replica asked for now first serves"
            )
        if self.frozen is not None and (self.frozen.predictor.horizon, self.window) != (self.horizon, None):
            raise ValueError(f"{self.frozen.artifact}: the model forecasts its own window and horizon")
        if self.frozen is None and self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; choose one of {sorted(MODEL_NAMES)}")


@dataclass(frozen=True)
class PolicyMetrics:
    """What one policy cost and missed over the replay (promcast.daemon.cycle.autoscale.replay_metrics says how)."""

    under_provisioned_steps: int
    under_provisioned_share: float
    unserved: float
    replica_hours: float
    over_provisioning: float
    scale_events: int

    @classmethod
    def of(cls, m: Mapping[str, float | int]) -> PolicyMetrics:
        """From ``replay_metrics``'s mapping."""
        return cls(
            int(m["under_provisioned_steps"]),
            float(m["under_provisioned_share"]),
            float(m["unserved"]),
            float(m["replica_hours"]),
            float(m["over_provisioning"]),
            int(m["scale_events"]),
        )


@dataclass(frozen=True)
class ReplaySpan:
    """The replayed steps: the first and last as timestamps, and how many."""

    start: str
    end: str
    steps: int


@dataclass(frozen=True)
class BacktestSettings:
    """The policies' settings (promcast.daemon.cycle.autoscale.Scaling's fields) and the forecast's."""

    capacity_per_replica: float
    target_utilization: float
    min_replicas: int
    max_replicas: int
    startup_steps: int
    scale_in_steps: int
    level: float
    horizon: int
    linear_range: int


@dataclass(frozen=True)
class BacktestModel(FittedModel):
    """The fitted model, how long it took, and where its bands come from."""

    fit_seconds: float
    bands: str


@dataclass(frozen=True)
class Accuracy:
    """One forecast's mean absolute error over the replay, overall and per horizon step."""

    mae: float
    mae_per_h: list[float]


@dataclass(frozen=True)
class BacktestSeries:
    """The replay's arrays, for the figures and the benchmark (not in metrics.json)."""

    demand: np.ndarray  # (T,) the load at each replayed step
    last: np.ndarray  # (T,) the load seen before it
    replays: dict[str, Replay]  # per policy, at the backtest's level
    start: pd.Timestamp  # the series' first timestamp
    step: pd.Timedelta
    origins: np.ndarray  # (T,) the replayed steps' positions in the series


@dataclass(frozen=True)
class BacktestResult:
    """A backtest: its metrics.json is ``daemon.offline.report.document`` of this."""

    input: str
    points: int
    step_seconds: float
    replay: ReplaySpan
    settings: BacktestSettings
    model: BacktestModel
    accuracy: dict[str, Accuracy]  # "model", "naive", "linear"
    policies: dict[str, PolicyMetrics]  # POLICIES at the backtest's level
    levels: dict[str, dict[str, PolicyMetrics]]  # per level of the sweep ("0.95"), the forecast policies
    series: BacktestSeries = field(repr=False, compare=False, metadata=INTERNAL)


def default_capacity(reg: RegularSeries) -> float:
    """Capacity per replica such that the mean load of the fitted part (the first 80 %) needs REPLICAS_AT_MEAN."""
    return float(np.mean(reg.values[: int(len(reg.values) * 0.8)])) / REPLICAS_AT_MEAN


def default_scale_in(step: pd.Timedelta) -> int:
    """The HPA's default scale-in stabilisation (5 minutes), in steps; at least 1."""
    return max(1, math.ceil(HPA_SCALE_IN_SECONDS / step.total_seconds()))


def _model_uppers(
    bt: Backtest, task: Task, window: int, levels: tuple[float, ...]
) -> tuple[np.ndarray, dict[float, np.ndarray], BacktestModel]:
    b = task.borders
    t0 = time.perf_counter()
    fc, about = replay_model(
        task.history(), bt.frozen, bt.model, window, bt.horizon, (b.val_end - b.train_end) / b.val_end, bt.fast, bt.seed
    )
    seconds = time.perf_counter() - t0
    if fc.calibration is not None:
        point, bounds = fc.predict_interval(task.inputs(fc.input_length), levels)
        model = BacktestModel(**about, fit_seconds=seconds, bands="the model's own calibration")
        return point, {lv: hi for lv, (_, hi) in bounds.items()}, model
    point, uppers = baseline_uppers(task, lambda o: fc.predict(inputs_at(task.values, o, fc.input_length)), levels)
    bands = "split-conformal on the validation part (the model has no calibration)"
    return point, uppers, BacktestModel(**about, fit_seconds=seconds, bands=bands)


def run_backtest(name: str, reg: RegularSeries, bt: Backtest, stage: Stage = quiet) -> BacktestResult:
    """Fit (unless frozen), forecast every step of the replay, run the four policies at every level of the sweep;
    ``stage`` is told each step as it begins."""
    window = bt.window or (DEFAULT_WINDOW if bt.model == DEFAULT_MODEL else window_for(reg.step))
    linear_range = bt.linear_range or bt.horizon
    from promcast.forecaster.gate import default_gate, input_length

    need = max(
        bt.frozen.predictor.input_length if bt.frozen else input_length(window, default_gate(bt.model)), linear_range
    )
    task = make_task(reg.values, reg.start, reg.step, Protocol(horizon=bt.horizon), stride=1, min_history=need)
    levels = tuple(sorted({*LEVELS, bt.level}))
    stage(f"forecasting with {bt.frozen.name}" if bt.frozen else f"fitting {bt.model}, forecasting")
    model_point, model_up, model = _model_uppers(bt, task, window, levels)
    stage(f"replaying {len(POLICIES)} policies at {len(levels)} levels")
    naive_point, naive_up = baseline_uppers(
        task, lambda o: np.repeat(task.values[o - 1][:, None], bt.horizon, axis=1), levels
    )
    lin_point, lin_up = baseline_uppers(
        task, lambda o: linear_forecast(task.values, o, linear_range, bt.horizon), levels
    )
    s, origins = bt.scaling, task.origins
    demand, last = task.values[origins], task.values[origins - 1]  # the load at each step; what was seen before it
    initial = int(needed(np.array([last[0]]), s)[0])
    step_hours = task.step.total_seconds() / 3600
    scaler = Autoscaler(s)

    def play(desired: np.ndarray) -> tuple[PolicyMetrics, Replay]:
        replay = scaler.run(desired, initial)
        return PolicyMetrics.of(replay_metrics(demand, replay, s, step_hours)), replay

    uppers = {"forecast": model_up, "forecast_naive": naive_up, "forecast_linear": lin_up}
    policies: dict[str, PolicyMetrics] = {}
    replays: dict[str, Replay] = {}
    policies["reactive"], replays["reactive"] = play(needed(last, s))
    sweep: dict[str, dict[str, PolicyMetrics]] = {}
    for policy, up in uppers.items():
        for lv in levels:
            m, rp = play(recommend(up[lv], last, s))  # what promcast_recommended_replicas publishes
            sweep.setdefault(f"{lv:g}", {})[policy] = m
            if lv == bt.level:
                policies[policy], replays[policy] = m, rp
    truth = task.targets()
    accuracy = {
        k: Accuracy(float(np.mean(np.abs(p - truth))), np.mean(np.abs(p - truth), axis=0).tolist())
        for k, p in (("model", model_point), ("naive", naive_point), ("linear", lin_point))
    }
    return BacktestResult(
        input=name,
        points=int(task.borders.n),
        step_seconds=task.step.total_seconds(),
        replay=ReplaySpan(
            str(task.start + int(origins[0]) * task.step), str(task.start + int(origins[-1]) * task.step), len(origins)
        ),
        settings=BacktestSettings(**asdict(s), level=bt.level, horizon=bt.horizon, linear_range=linear_range),
        model=model,
        accuracy=accuracy,
        policies=policies,
        levels=sweep,
        series=BacktestSeries(demand, last, replays, task.start, task.step, origins),
    )
