"""``promcast backtest``: what a forecast-driven autoscaler would have done on a recorded series, and what it cost.

The series is split as the benchmark splits it (forecaster.protocol: train 70 %, validation 10 %); the model is
fitted on those 80 % and forecasts at every step of the last 20 %, each forecast seeing only the data before its
origin. Four policies (daemon.autoscale) follow the replay with the same settings:

- ``reactive``: the HPA on the actual load alone;
- ``forecast``: ``promcast_recommended_replicas`` on the model's upper bound at ``--level``;
- ``forecast_naive`` and ``forecast_linear``: the same signal with naive (the last value) and Prometheus's
  ``predict_linear`` (least squares over the last ``--linear-range`` steps) in place of the model, so that the
  model's own worth is visible.

Naive and predict_linear have no calibration of their own: their bands are split-conformal, the ``level``
quantile of their absolute errors per horizon step over the validation part. The model's bands are its own
calibration. The daemon's online adaptation of the bands (aci_gamma) and the gate's switch to a fallback
(guard) are not replayed: the backtest measures the calibrated forecast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from forecaster import DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_WINDOW, MODEL_NAMES
from forecaster.artifact import write_atomic
from forecaster.data import RegularSeries, load_csv, regularise
from forecaster.protocol import Protocol, Task, inputs_at, make_task, targets_at, window_for

from .autoscale import Autoscaler, Replay, Scaling, needed, recommend, replay_metrics
from .settings import ConfigError

__all__ = [
    "LEVELS",
    "POLICIES",
    "Backtest",
    "add_backtest",
    "default_capacity",
    "default_scale_in",
    "linear_forecast",
    "run_backtest",
    "write_report",
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

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError(f"level must lie strictly between 0 and 1, got {self.level:g}")
        if self.scaling.startup_steps >= self.horizon:
            raise ValueError(
                f"startup_steps {self.scaling.startup_steps} must be shorter than the horizon {self.horizon}: the "
                "forecast must cover the step at which a replica asked for now first serves"
            )
        if self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; choose one of {sorted(MODEL_NAMES)}")


def default_capacity(reg: RegularSeries) -> float:
    """Capacity per replica such that the mean load of the fitted part (the first 80 %) needs REPLICAS_AT_MEAN."""
    return float(np.mean(reg.values[: int(len(reg.values) * 0.8)])) / REPLICAS_AT_MEAN


def default_scale_in(step: pd.Timedelta) -> int:
    """The HPA's default scale-in stabilisation (5 minutes), in steps; at least 1."""
    return max(1, math.ceil(HPA_SCALE_IN_SECONDS / step.total_seconds()))


def linear_forecast(values: np.ndarray, origins: np.ndarray, range_steps: int, horizon: int) -> np.ndarray:
    """Prometheus's ``predict_linear``: the least-squares line through the ``range_steps`` points before each
    origin, extrapolated to each of the next ``horizon`` steps. (N, horizon)."""
    x = np.arange(range_steps, dtype=np.float64)
    xc = x - x.mean()
    y = inputs_at(values, origins, range_steps)  # (N, range)
    slope = (y - y.mean(axis=1, keepdims=True)) @ xc / max(float(xc @ xc), 1e-12)
    ahead = range_steps - 1 - x.mean() + np.arange(1, horizon + 1, dtype=np.float64)
    return y.mean(axis=1, keepdims=True) + slope[:, None] * ahead[None, :]


def _conformal(errors: np.ndarray, levels: tuple[float, ...]) -> dict[float, np.ndarray]:
    """Per level, the split-conformal quantile of absolute errors (N, H) per step: ceil((n + 1) level) / n."""
    n = len(errors)
    return {
        lv: np.quantile(np.abs(errors), min(1.0, math.ceil((n + 1) * lv) / n), axis=0, method="higher") for lv in levels
    }


def _baseline_uppers(
    task: Task, point_of: Any, levels: tuple[float, ...]
) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """A baseline's point forecasts at the replay's origins, and its upper bounds per level, calibrated on the
    origins of the validation part."""
    b = task.borders
    start = max(b.train_end, task.origins[0] - (b.val_end - b.train_end))
    cal = np.arange(start, b.val_end - task.horizon + 1)
    if len(cal) < 10:
        raise ValueError(f"the validation part holds {len(cal)} origins; at least 10 are needed to calibrate")
    q = _conformal(point_of(cal) - targets_at(task.values, cal, task.horizon), levels)
    point = point_of(task.origins)
    return point, {lv: point + q[lv][None, :] for lv in levels}


def _model_uppers(
    bt: Backtest, task: Task, window: int, levels: tuple[float, ...]
) -> tuple[np.ndarray, dict[float, np.ndarray], dict[str, Any]]:
    from forecaster.offline import fit_first_part

    b = task.borders
    t0 = time.perf_counter()
    fc, about = fit_first_part(
        task.history(), bt.model, window, bt.horizon, (b.val_end - b.train_end) / b.val_end, bt.fast, bt.seed
    )
    about["fit_seconds"] = time.perf_counter() - t0
    if fc.calibration is not None:
        point, bounds = fc.predict_interval(task.inputs(fc.input_length), levels)
        return point, {lv: hi for lv, (_, hi) in bounds.items()}, {**about, "bands": "the model's own calibration"}
    point, uppers = _baseline_uppers(task, lambda o: fc.predict(inputs_at(task.values, o, fc.input_length)), levels)
    return point, uppers, {**about, "bands": "split-conformal on the validation part (the model has no calibration)"}


def run_backtest(name: str, reg: RegularSeries, bt: Backtest) -> dict[str, Any]:
    """Fit, forecast every step of the replay, run the four policies; the figures metrics.json holds."""
    window = bt.window or (DEFAULT_WINDOW if bt.model == DEFAULT_MODEL else window_for(reg.step))
    linear_range = bt.linear_range or bt.horizon
    from forecaster.gate import default_gate, input_length

    need = max(input_length(window, default_gate(bt.model)), linear_range)
    task = make_task(reg.values, reg.start, reg.step, Protocol(horizon=bt.horizon), stride=1, min_history=need)
    levels = tuple(sorted({*LEVELS, bt.level}))
    model_point, model_up, about = _model_uppers(bt, task, window, levels)
    naive_point, naive_up = _baseline_uppers(
        task, lambda o: np.repeat(task.values[o - 1][:, None], bt.horizon, axis=1), levels
    )
    lin_point, lin_up = _baseline_uppers(
        task, lambda o: linear_forecast(task.values, o, linear_range, bt.horizon), levels
    )
    s, origins = bt.scaling, task.origins
    demand, last = task.values[origins], task.values[origins - 1]  # the load at each step; what was seen before it
    initial = int(needed(np.array([last[0]]), s)[0])
    step_hours = task.step.total_seconds() / 3600
    scaler = Autoscaler(s)

    def play(desired: np.ndarray) -> tuple[dict[str, Any], Replay]:
        replay = scaler.run(desired, initial)
        return replay_metrics(demand, replay, s, step_hours), replay

    uppers = {"forecast": model_up, "forecast_naive": naive_up, "forecast_linear": lin_up}
    policies, replays = {}, {}
    policies["reactive"], replays["reactive"] = play(needed(last, s))
    sweep: dict[str, dict[str, Any]] = {}
    for policy, up in uppers.items():
        for lv in levels:
            m, rp = play(recommend(up[lv], last, s))  # what promcast_recommended_replicas publishes
            sweep.setdefault(f"{lv:g}", {})[policy] = m
            if lv == bt.level:
                policies[policy], replays[policy] = m, rp
    truth = task.targets()
    accuracy = {
        k: {"mae": float(np.mean(np.abs(p - truth))), "mae_per_h": np.mean(np.abs(p - truth), axis=0).tolist()}
        for k, p in (("model", model_point), ("naive", naive_point), ("linear", lin_point))
    }
    return {
        "input": name,
        "points": int(task.borders.n),
        "step_seconds": task.step.total_seconds(),
        "replay": {
            "start": str(task.start + int(origins[0]) * task.step),
            "end": str(task.start + int(origins[-1]) * task.step),
            "steps": len(origins),
        },
        "settings": {**asdict(s), "level": bt.level, "horizon": bt.horizon, "linear_range": linear_range},
        "model": about,
        "accuracy": accuracy,
        "policies": policies,
        "levels": sweep,
        "_series": {
            "demand": demand,
            "last": last,
            "replays": replays,
            "start": task.start,
            "step": task.step,
            "origins": origins,
        },
    }


def write_report(out: Path, result: dict[str, Any]) -> list[Path]:
    """report.md, metrics.json, capacity.png and tradeoff.png in ``out``, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    series = result["_series"]
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    paths = [write_atomic(out / "metrics.json", json.dumps(public, indent=2).encode())]
    paths.append(write_atomic(out / "report.md", _markdown(public).encode()))
    from .backtest_plots import plot_capacity, plot_tradeoff

    paths.append(write_atomic(out / "capacity.png", plot_capacity(series, public)))
    paths.append(write_atomic(out / "tradeoff.png", plot_tradeoff(public)))
    return paths


def _markdown(r: dict[str, Any]) -> str:
    s = r["settings"]
    lines = [
        f"# Autoscaling backtest: {r['input']}",
        "",
        f"- Replay: {r['replay']['steps']} steps of {r['step_seconds']:g} s, {r['replay']['start']} to "
        f"{r['replay']['end']} (the last 20 % of {r['points']} points; the model is fitted on the 80 % before).",
        f"- Model: `{r['model']['name']}` (window {r['model']['window']}, fitted in {r['model']['fit_seconds']:.1f} s; "
        f"bands: {r['model']['bands']}).",
        f"- Settings: capacity_per_replica {s['capacity_per_replica']:g}, target_utilization "
        f"{s['target_utilization']:g}, replicas {s['min_replicas']}..{s['max_replicas']}, start-up "
        f"{s['startup_steps']} steps, scale-in stabilisation {s['scale_in_steps']} steps, level {s['level']:g}, "
        f"horizon {s['horizon']}, predict_linear range {s['linear_range']} steps.",
        "",
        "| policy | under-provisioned steps | share | unserved | replica-hours | mean spare replicas | scale events |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in POLICIES:
        m = r["policies"][name]
        lines.append(
            f"| {name} | {m['under_provisioned_steps']} | {m['under_provisioned_share']:.2%} | {m['unserved']:.4g} | "
            f"{m['replica_hours']:.1f} | {m['over_provisioning']:.2f} | {m['scale_events']} |"
        )
    lines += [
        "",
        "Under-provisioned: the step's demand exceeds the serving replicas x capacity_per_replica. Unserved: the sum "
        "of that excess (load units x steps). Replica-hours count replicas still starting. Over-provisioning: the "
        "mean spare serving capacity, in replicas.",
        "",
        "## Forecast accuracy over the replay (MAE, original units)",
        "",
        "| forecast | MAE | " + " | ".join(f"h={h + 1}" for h in range(s["horizon"])) + " |",
        "|---|---:|" + "---:|" * s["horizon"],
    ]
    for k, a in r["accuracy"].items():
        lines.append(f"| {k} | {a['mae']:.4g} | " + " | ".join(f"{v:.4g}" for v in a["mae_per_h"]) + " |")
    lines += [
        "",
        "## The trade-off as the level varies (share under-provisioned / replica-hours)",
        "",
        "| level | " + " | ".join(POLICIES[1:]) + " |",
        "|---|" + "---|" * (len(POLICIES) - 1),
    ]
    for lv, row in r["levels"].items():
        cells = [f"{row[p]['under_provisioned_share']:.2%} / {row[p]['replica_hours']:.1f}" for p in POLICIES[1:]]
        lines.append(f"| {lv} | " + " | ".join(cells) + " |")
    reactive = r["policies"]["reactive"]
    lines += [
        "",
        f"reactive: {reactive['under_provisioned_share']:.2%} / {reactive['replica_hours']:.1f}.",
        "",
        "![demand and serving capacity](capacity.png)",
        "",
        "![trade-off](tradeoff.png)",
        "",
    ]
    return "\n".join(lines)


# --- the command -------------------------------------------------------------------------------------------------


def add_backtest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest", help="replay a series through the forecaster and scaling policies: would it have scaled in time?"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="CSV of timestamp,value to replay")
    src.add_argument("--config", help="settings file whose --target's history is read through its source")
    p.add_argument("--target", help="with --config: the target to replay")
    p.add_argument("--since", help="with --config: how far back to read, e.g. 14d or PT20H (default: its history)")
    p.add_argument("--value-column", help="with --input: the value column (default 'value')")
    p.add_argument("--out", required=True, help="folder for report.md, metrics.json and the plots")
    p.add_argument("--capacity-per-replica", type=float, help="load one replica serves (default: mean load / 5)")
    p.add_argument("--target-utilization", type=float, help="share of the capacity planned for (default 1)")
    p.add_argument("--startup-steps", type=int, default=1, help="steps before a new replica serves (default 1)")
    p.add_argument("--scale-in-steps", type=int, help="scale-in stabilisation window in steps (default: 5 minutes)")
    p.add_argument("--min-replicas", type=int, help="default 1")
    p.add_argument("--max-replicas", type=int, help="default 100")
    p.add_argument("--level", type=float, default=0.95, help="level of the upper bound the forecast policy uses")
    p.add_argument("--model", help=f"model of the registry (default {DEFAULT_MODEL}, or the target's)")
    p.add_argument("--fast", action="store_true", help="tiny network and few epochs (for tests)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_backtest_command)


def _series(args: argparse.Namespace) -> tuple[str, RegularSeries, dict[str, Any]]:
    """The series to replay, its name, and the target's own settings (with --config)."""
    if args.input:
        if args.target or args.since:
            raise ConfigError("--target and --since go with --config, not --input")
        raw = load_csv(args.input, args.value_column).groupby(level=0, sort=True).mean()
        return Path(args.input).stem, regularise(raw, None, max_gap=None), {}
    if not args.target:
        raise ConfigError("--config needs --target NAME: the target to replay")
    from .settings import load_settings
    from .sources import make_source
    from .training import longest_history

    settings = load_settings(args.config)
    target = next((t for t in settings.targets if t.name == args.target), None)
    if target is None:
        raise ConfigError(f"--target {args.target!r}: no such target in {args.config}")
    if args.since:
        try:
            target = type(target).model_validate({**target.model_dump(), "history": args.since})
        except ValidationError as exc:
            raise ConfigError(f"--since {args.since!r}: {exc.errors()[0]['msg']}") from exc
    source = make_source(settings)
    history = longest_history(source, target, source.now())
    ((key, raw),) = history.items()
    own = {
        "model": target.model,
        "window": target.window,
        "horizon": target.horizon,
        "capacity_per_replica": target.capacity_per_replica,
        "target_utilization": target.target_utilization,
        "min_replicas": target.min_replicas,
        "max_replicas": target.max_replicas,
    }
    name = f"{target.name} {dict(key)}"
    return name, regularise(raw, target.step, max_gap=None), own


def run_backtest_command(args: argparse.Namespace) -> int:
    try:
        return _command(args)
    except (OSError, ValueError) as exc:  # a missing file, a series too short: said in one line, exit 1
        print(f"promcast backtest: {exc}", file=sys.stderr)
        return 1


def _command(args: argparse.Namespace) -> int:
    name, reg, own = _series(args)
    capacity = args.capacity_per_replica if args.capacity_per_replica is not None else own.get("capacity_per_replica")
    if capacity is None:
        capacity = default_capacity(reg)
        if not capacity > 0:
            raise ConfigError("--capacity-per-replica: the mean load is not positive; give the capacity")
    scale_in = args.scale_in_steps if args.scale_in_steps is not None else default_scale_in(reg.step)
    pick = {k: v for k, v in own.items() if k in ("target_utilization", "min_replicas", "max_replicas")}
    flags = {
        "target_utilization": args.target_utilization,
        "min_replicas": args.min_replicas,
        "max_replicas": args.max_replicas,
    }
    pick.update({k: v for k, v in flags.items() if v is not None})
    try:
        scaling = Scaling(capacity, startup_steps=args.startup_steps, scale_in_steps=scale_in, **pick)
        shape = {"window": own["window"], "horizon": own["horizon"]} if own else {}
        model = args.model or own.get("model", DEFAULT_MODEL)
        bt = Backtest(scaling, args.level, model, fast=args.fast, seed=args.seed, **shape)
    except ValueError as exc:
        raise ConfigError(f"backtest: {exc}") from exc
    result = run_backtest(name, reg, bt)
    for path in write_report(Path(args.out), result):
        print(path)
    print(_markdown({k: v for k, v in result.items() if not k.startswith("_")}).split("\n\n## ")[0])
    return 0
