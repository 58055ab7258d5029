"""`promcast evaluate`: compare the models and the baselines on a CSV or a synthetic workload, write a report."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any, TypeVar

import pandas as pd

from ..data import load_csv, regularise
from ..names import BASELINES, DEFAULT_MODEL, DEFAULT_WINDOW, MODEL_NAMES
from ..protocol import day_steps, window_for
from ..scalers import SCALERS
from ..synthetic import WORKLOADS, make_workload

__all__ = ["add_evaluate", "build_parser", "default_models", "main", "run_evaluate"]

FAST_WINDOW = 24

T = TypeVar("T")


def default_models() -> list[str]:
    """Baselines, the production default (read now: it may change), then the networks the week plan compares."""
    return _unique([*BASELINES, DEFAULT_MODEL, "lstm", "gru", "transformer"])


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
    p.add_argument("--models", nargs="+", choices=sorted(MODEL_NAMES), help="models (the baselines always run too)")
    p.add_argument("--window", nargs="+", help="input windows: integers, 'day' (one day of steps) or 'bench'")
    p.add_argument("--stride", type=int, help="steps between test origins (default max(1, test points // 1500))")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per network (default 3)")
    p.add_argument("--epochs", type=int, help="training epochs (default 50; 3 with --fast)")
    p.add_argument("--max-batches", type=int, help="batches per epoch, 0 for all (default 0; 10 with --fast)")
    p.add_argument(
        "--scaler", choices=sorted(SCALERS), default="standard", help="global scaler of every model (default standard)"
    )
    p.add_argument("--fast", action="store_true", help="tiny networks and a few epochs, for CI")
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


def _load(args: argparse.Namespace) -> tuple[str, pd.Series]:
    if args.synthetic:
        series = make_workload(args.synthetic, args.points, args.step, args.data_seed)
        return f"synthetic {args.synthetic} ({args.points} points, step {args.step}, seed {args.data_seed})", series
    return str(args.input), load_csv(args.input, args.value_column)


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvalConfig, evaluate  # imports torch: only when the command runs

    try:
        name, series = _load(args)
        reg = regularise(series, None, max_gap=None)
        config = EvalConfig(
            models=tuple(_unique([*BASELINES, *(args.models or default_models())])),
            windows=_windows(args.window, reg.step, args.fast),
            seeds=args.seeds,
            stride=args.stride,
            fast=args.fast,
            training=_training(args),
            default_model=DEFAULT_MODEL,
            scaler=args.scaler,
        )
        result = evaluate(name, reg.values, reg.start, reg.step, config)
    except (OSError, ValueError) as exc:
        print(f"promcast evaluate: {exc}", file=sys.stderr)
        return 1
    from .report import write_report  # matplotlib is loaded only when a report is written

    argv = getattr(args, "argv", None) or sys.argv[1:]  # mounted in the daemon's CLI, sys.argv is the command
    command = "promcast " + shlex.join(argv)
    report = write_report(result, args.out, command)
    print(f"wrote {report} and {report.parent / 'metrics.json'}")
    return 0


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
