"""The offline replays' commands: ``promcast backtest`` (daemon.offline.backtest) and ``promcast bursts``
(daemon.offline.bursts). Each writes its report through daemon.offline.report and prints the paths written and a
summary; a bad setting exits 2 naming it, a failure of the replay (a missing file, a series too short) exits 1.
``--model pretrained`` and ``--artifact DIR`` replay a model as loaded, on the NumPy runtime: no torch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from promcast.daemon.settings import BurstSettings, ConfigError
from promcast.forecaster.data import RegularSeries, load_csv, regularise
from promcast.forecaster.names import DEFAULT_MODEL, MODEL_NAMES, PRETRAINED_MODEL
from promcast.forecaster.progress import Stages, stderr_lines

if TYPE_CHECKING:
    from promcast.daemon.offline.backtest import Backtest
    from promcast.daemon.offline.replay_model import Frozen
    from promcast.daemon.offline.report import Report

__all__ = ["add_backtest", "add_bursts", "run_backtest_command", "run_bursts_command"]

# The replays load only when their command runs: `promcast train` and `promcast run` parse these flags too.
_BURSTS = BurstSettings()
_ARTIFACT = "a model artifact (a model store's version folder) to replay as it is, on the NumPy runtime"


def _add_model(p: argparse.ArgumentParser, names: list[str] | None, default_says: str) -> None:
    """--model (fitted on the series' first part, or ``pretrained``) and --artifact, one or the other."""
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--model",
        choices=names,
        help=f"model of the registry, fitted first, or {PRETRAINED_MODEL!r}: the shipped one (default {default_says})",
    )
    which.add_argument("--artifact", metavar="DIR", help=_ARTIFACT)


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
    _add_model(p, None, f"{DEFAULT_MODEL}, or the target's")
    p.add_argument("--fast", action="store_true", help="tiny network and few epochs (for tests)")
    p.add_argument("--seed", type=int, default=0, help="training seed of a fitted model")
    p.set_defaults(func=run_backtest_command)


def run_backtest_command(args: argparse.Namespace) -> int:
    try:
        return _backtest(args)
    except (OSError, ValueError) as exc:  # a missing file, a series too short: said in one line, exit 1
        print(f"promcast backtest: {exc}", file=sys.stderr)
        return 1


def _backtest(args: argparse.Namespace) -> int:
    from promcast.daemon.offline import backtest_report
    from promcast.daemon.offline.backtest import run_backtest
    from promcast.daemon.offline.replay_model import load_model

    with Stages(4, "backtest", stderr_lines("promcast backtest")) as stages:  # reading, fitting, replaying, writing
        stages.stage(f"reading {args.input or args.target}")
        name, reg, own = _series(args)
        frozen = load_model(args.model or own.get("model"), args.artifact)
        result = run_backtest(name, reg, _backtest_settings(args, reg, own, frozen), stages.stage)
        stages.stage("writing report")
        _write(Path(args.out), backtest_report.backtest_report(result))
    print(backtest_report.summary(result))
    return 0


def _write(out: Path, report: Report) -> None:
    """Write ``report``, print the paths written, and say on stderr which figures it skipped, if any."""
    from promcast.daemon.offline.report import skipped_note, write_report

    for path in write_report(out, report):
        print(path)
    if note := skipped_note(report):
        print(note, file=sys.stderr)


def _series(args: argparse.Namespace) -> tuple[str, RegularSeries, dict[str, Any]]:
    """The series to replay, its name, and the target's own settings (with --config)."""
    if args.input:
        if args.target or args.since:
            raise ConfigError("--target and --since go with --config, not --input")
        raw = load_csv(args.input, args.value_column).groupby(level=0, sort=True).mean()
        return Path(args.input).stem, regularise(raw, None, max_gap=None), {}
    if not args.target:
        raise ConfigError("--config needs --target NAME: the target to replay")
    from promcast.daemon.models.training import longest_history
    from promcast.daemon.settings import load_settings
    from promcast.daemon.sources import make_source

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


def _backtest_settings(
    args: argparse.Namespace, reg: RegularSeries, own: dict[str, Any], frozen: Frozen | None
) -> Backtest:
    """The flags over the target's own settings over the defaults; ConfigError names a bad one. A frozen model
    forecasts its own window and horizon."""
    from promcast.daemon.cycle.autoscale import Scaling
    from promcast.daemon.offline.backtest import Backtest, default_capacity, default_scale_in

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
        shape: dict[str, Any] = {"window": own["window"], "horizon": own["horizon"]} if own else {}
        if frozen is not None:
            shape = {"horizon": frozen.predictor.horizon, "frozen": frozen}
        model = frozen.name if frozen else args.model or own.get("model", DEFAULT_MODEL)
        return Backtest(scaling, args.level, model, fast=args.fast, seed=args.seed, **shape)
    except ValueError as exc:
        raise ConfigError(f"backtest: {exc}") from exc


def add_bursts(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bursts", help="flag the actual values of a CSV that break the forecast; NAB-score them")
    p.add_argument("--input", required=True, help="CSV of timestamp,value")
    p.add_argument("--value-column", help="the value column (default 'value')")
    p.add_argument("--out", required=True, help="folder for metrics.json, bursts.csv, report.md and bursts.png")
    p.add_argument("--labels", help="JSON mapping a CSV's file stem to its [start, end] windows (NAB's format)")
    p.add_argument(
        "--threshold", type=float, default=_BURSTS.threshold, help=f"band widths (default {_BURSTS.threshold:g})"
    )
    p.add_argument("--persistence", type=int, default=_BURSTS.persistence, help="steps running (default 2)")
    p.add_argument("--spike", type=float, default=_BURSTS.spike, help="band widths of a one-step burst (10)")
    _add_model(p, [*sorted(MODEL_NAMES), PRETRAINED_MODEL], DEFAULT_MODEL)
    p.add_argument("--fast", action="store_true", help="tiny network and few epochs (for tests)")
    p.add_argument("--seed", type=int, default=0, help="training seed of a fitted model")
    p.set_defaults(func=run_bursts_command)


def run_bursts_command(args: argparse.Namespace) -> int:
    from promcast.daemon.cycle.bursts import BurstParams
    from promcast.daemon.offline import bursts_report
    from promcast.daemon.offline.bursts import run_bursts
    from promcast.daemon.offline.replay_model import load_model

    try:
        params = BurstParams(args.threshold, args.persistence, args.spike)
    except ValueError as exc:
        print(f"promcast bursts: {exc}", file=sys.stderr)
        return 2
    stages = Stages(4, "bursts", stderr_lines("promcast bursts"))  # reading, fitting, flagging, writing
    try:
        stages.stage(f"reading {args.input}")
        stem = Path(args.input).stem
        windows = None
        if args.labels:
            labels = json.loads(Path(args.labels).read_text())
            if stem not in labels:
                print(f"promcast bursts: {args.labels} has no windows for {stem!r}", file=sys.stderr)
                return 2
            windows = labels[stem]
        raw = load_csv(args.input, args.value_column).groupby(level=0, sort=True).mean()
        model = args.model or DEFAULT_MODEL
        frozen = load_model(model, args.artifact)
        reg = regularise(raw, None, max_gap=None)
        result = run_bursts(stem, reg, params, windows, model, args.fast, args.seed, frozen, stages.stage)
        stages.stage("writing report")
        _write(Path(args.out), bursts_report.bursts_report(result))
    except (OSError, ValueError) as exc:
        print(f"promcast bursts: {exc}", file=sys.stderr)
        return 1
    finally:
        stages.close()
    print(bursts_report.summary(result))
    return 0
