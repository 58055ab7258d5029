"""`promcast evaluate`: compare the models and the baselines on a CSV or a synthetic workload, write a report."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from ..data import load_csv, regularise
from ..names import BASELINES, DEFAULT_MODEL, DEFAULT_WINDOW, MODEL_NAMES
from ..progress import Stages, stderr_lines
from ..protocol import day_steps, window_for
from ..scalers import SCALERS
from ..synthetic import WORKLOADS, make_workload

if TYPE_CHECKING:
    from .evaluate import EvalConfig, Work
    from .fitting import Plan

__all__ = ["QUICK_CAPS", "add_evaluate", "build_parser", "default_models", "full_models", "main", "run_evaluate"]

FAST_WINDOW = 24
# The default run, sized to finish in a few minutes on two CPU cores: one seed, and the epochs and batches per
# epoch of every network but the production default capped (EvalConfig.caps). --full lifts the caps: every model's
# own training, with 3 seeds.
QUICK_SEEDS = 1
QUICK_CAPS: dict[str, int] = {"epochs": 10, "max_batches": 4}
FULL_SEEDS = 3

T = TypeVar("T")


def full_models() -> list[str]:
    """Baselines, the production default (read now: it may change), then the networks the week plan compares."""
    return _unique([*BASELINES, DEFAULT_MODEL, "lstm", "gru", "transformer"])


def default_models() -> list[str]:
    """``full_models`` less the transformer: on two CPU cores one batch of its attention over a day of steps takes
    seconds, so that even a few epochs of it would take the default run well past a few minutes."""
    return [m for m in full_models() if m != "transformer"]


def _unique(items: list[T]) -> list[T]:
    return list(dict.fromkeys(items))


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="compare models and baselines on a series; write report.md and metrics.json")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="CSV of timestamp,value (or --value-column)")
    source.add_argument("--synthetic", choices=sorted(WORKLOADS), help="a seeded synthetic workload instead")
    p.add_argument("--value-column", default=None, help="value column of the CSV, e.g. OT (default: 'value')")
    p.add_argument("--points", type=int, default=4032, help="synthetic: number of points (default 4032)")
    p.add_argument("--step", default="5min", help="synthetic: step (default 5min)")
    p.add_argument("--data-seed", type=int, default=0, help="synthetic: seed of the workload (default 0)")
    nets = ", ".join(m for m in default_models() if m not in BASELINES)
    p.add_argument(
        "--models",
        nargs="+",
        choices=sorted(MODEL_NAMES),
        help=f"models (default {nets}; the transformer too with --full; the baselines always run)",
    )
    p.add_argument("--window", nargs="+", help="input windows: integers, 'day' (one day of steps) or 'bench'")
    p.add_argument("--stride", type=int, help="steps between test origins (default max(1, test points // 1500))")
    p.add_argument("--seeds", type=int, help="training seeds per network (default 1; 3 with --full)")
    p.add_argument(
        "--epochs",
        type=int,
        help="training epochs (default 10, the default model its own; each model its own with --full; 3 with --fast)",
    )
    p.add_argument(
        "--max-batches",
        type=int,
        help="batches per epoch, 0 for all (default 4, the default model its own; each model its own with --full; "
        "10 with --fast)",
    )
    p.add_argument(
        "--scaler", choices=sorted(SCALERS), default="standard", help="global scaler of every model (default standard)"
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--fast", action="store_true", help="tiny networks and a few epochs, for CI")
    size.add_argument(
        "--full",
        action="store_true",
        help="3 seeds, each model's own epochs and batches, the transformer too: hours on two CPU cores",
    )
    p.add_argument("--out", required=True, help="output folder for report.md, metrics.json and the PNGs")
    p.set_defaults(func=run_evaluate)


def _windows(tokens: list[str] | None, step: pd.Timedelta, fast: bool) -> tuple[int, ...]:
    if not tokens:
        return (FAST_WINDOW,) if fast else tuple(_unique([DEFAULT_WINDOW, window_for(step)]))
    named = {"day": day_steps(step), "bench": window_for(step)}
    out = []
    for token in tokens:
        value = named.get(token) or (int(token) if token.isdigit() else 0)
        if value < 1:
            raise ValueError(f"--window {token!r}: expected a positive integer, 'day' or 'bench'")
        out.append(value)
    return tuple(_unique(out))


def _training(args: argparse.Namespace) -> dict[str, Any]:
    changes = {"epochs": args.epochs, "max_batches": args.max_batches}
    return {k: v for k, v in changes.items() if v is not None}


def _caps(args: argparse.Namespace) -> dict[str, Any]:
    return {} if args.fast or args.full else dict(QUICK_CAPS)


def _seeds(args: argparse.Namespace) -> int:
    if args.seeds is not None:
        return int(args.seeds)
    return FULL_SEEDS if args.full else QUICK_SEEDS


def _models(args: argparse.Namespace) -> list[str]:
    return list(args.models or (full_models() if args.full else default_models()))


def _load(args: argparse.Namespace) -> tuple[str, pd.Series]:
    if args.synthetic:
        series = make_workload(args.synthetic, args.points, args.step, args.data_seed)
        return f"synthetic {args.synthetic} ({args.points} points, step {args.step}, seed {args.data_seed})", series
    return str(args.input), load_csv(args.input, args.value_column)


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvalConfig, plan_work, run_work  # imports torch: only when the command runs

    emit = stderr_lines("promcast evaluate")
    try:
        name, series = _load(args)
        reg = regularise(series, None, max_gap=None)
        config = EvalConfig(
            models=tuple(_unique([*BASELINES, *_models(args)])),
            windows=_windows(args.window, reg.step, args.fast),
            seeds=_seeds(args),
            stride=args.stride,
            fast=args.fast,
            training=_training(args),
            caps=_caps(args),
            default_model=DEFAULT_MODEL,
            scaler=args.scaler,
        )
        work = plan_work(reg.values, reg.start, reg.step, config)
        left_out = [m for m in full_models() if m not in config.models] if not args.models else []
        print(f"promcast evaluate: plan: {describe(work, config, left_out)}", file=sys.stderr, flush=True)
        with Stages(work.stages + 1, "evaluate", emit) as stages:
            result = run_work(name, work, config, stages.stage, bars=stages.terminal)
            stages.stage("writing report")
            from .report import write_report  # matplotlib is loaded only when a report is written

            argv = getattr(args, "argv", None) or sys.argv[1:]  # mounted in the daemon's CLI, sys.argv is the command
            report = write_report(result, args.out, "promcast " + shlex.join(argv))
    except (OSError, ValueError) as exc:
        print(f"promcast evaluate: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {report} and {report.parent / 'metrics.json'}")
    return 0


def describe(work: Work, config: EvalConfig, left_out: list[str]) -> str:
    """The plan line: the models, their seeds, epochs and batches, the windows, and the fits they make."""
    plans = next(iter(work.plans.values()))
    budgets = {p.label: _budget(p, config) for p in plans if p.trainable}
    nets = [*budgets, *(["lstm_1step"] if work.single_step else [])]
    baselines = [p.label for p in plans if not p.trainable]
    by_budget: dict[str, list[str]] = {}
    for label, budget in budgets.items():
        by_budget.setdefault(budget, []).append(label)
    each = "; ".join(f"{', '.join(labels)} at most {budget}" for budget, labels in by_budget.items())
    training = f"{_plural(config.seeds, 'seed')} per network; {each}" if budgets else "nothing to train"
    text = (
        f"{_plural(len(nets), 'network')} ({', '.join(nets)}{'; tiny' if config.fast else ''}) and "
        f"{_plural(len(baselines), 'baseline')} ({', '.join(baselines)}); {training}; "
        f"input {'windows' if len(work.plans) > 1 else 'window'} {', '.join(str(w) for w in work.plans)}; "
        f"{_plural(len(work.task.origins), 'test window')} of {work.task.horizon} steps; {_plural(work.fits, 'fit')}"
    )
    if left_out:
        them = "them" if len(left_out) > 1 else "it"
        text += f"; left out: {', '.join(left_out)} (--full or --models adds {them})"
    return text


def _budget(plan: Plan, config: EvalConfig) -> str:
    """A network's epochs and batches per epoch, as it will train."""
    from .fitting import training_for  # imports torch, as the evaluation itself does

    t = training_for(plan, config.overrides(plan.model), 0)
    batches = _plural(t.max_batches, "batch", "batches") if t.max_batches else "all batches"
    return f"{_plural(t.epochs, 'epoch')} of {batches}"


def _plural(n: int, noun: str, plural: str = "") -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promcast", description="Evaluate forecasters.")
    add_evaluate(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `promcast evaluate ARGS` without the daemon's CLI: ``main(["evaluate", "--synthetic", ...])``."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
