"""Command-line subcommands of the forecasting core (``promcast predict``); daemon/cli.py mounts them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from . import load_pretrained
from .artifact import ArtifactError
from .data import load_csv, median_step
from .numpy_runtime import load_frozen

__all__ = ["add_predict"]


def add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="forecast the steps after a CSV with a saved model (inference only)")
    p.add_argument(
        "--model",
        required=True,
        help="artifact folder written by Forecaster.save or promcast train, or 'pretrained': the model that ships "
        "in the package (forecaster/pretrained/MODEL_CARD.md), for a series of any step",
    )
    p.add_argument("--input", required=True, help="CSV of timestamp,value (or --value-column)")
    p.add_argument("--value-column", default=None, help="value column of the CSV (default: 'value')")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--levels", type=_levels, default=(0.8, 0.95), help="prediction interval levels (default 0.8,0.95)")
    p.set_defaults(func=run_predict)


def _levels(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected levels such as 0.8,0.95") from exc
    if not levels or not all(0 < x < 1 for x in levels):
        raise argparse.ArgumentTypeError(f"{text!r}: each level lies strictly between 0 and 1")
    return levels


def run_predict(args: argparse.Namespace) -> int:
    try:
        # A one-off command may load through torch what the NumPy runtime refuses (an older artifact), saying so.
        if args.model == "pretrained" and not Path(args.model).exists():
            model = load_pretrained()
        else:
            model = load_frozen(args.model, torch_fallback=True, on_fallback=lambda why: print(why, file=sys.stderr))
        series = load_csv(args.input, args.value_column)
        own = median_step(pd.DatetimeIndex(series.index)) if len(series) > 1 else None
        if model.step is not None and own is not None and own != model.step:
            raise ValueError(
                f"{args.input}: its step is {own.total_seconds():g}s but the model's is "
                f"{model.step.total_seconds():g}s; resample the CSV to the model's step first "
                "(otherwise most of its input would be filled in by interpolation)"
            )
        if model.calibration is not None:
            values, bounds = model.forecast_interval(series, args.levels)
        else:
            values, bounds = model.forecast(series), {}
    except ArtifactError as exc:
        print(f"promcast predict: bad model artifact: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"promcast predict: {exc}", file=sys.stderr)
        return 1
    step = model.step or own or pd.Timedelta(minutes=1)  # the pretrained model has none: the CSV's own
    last = pd.Timestamp(series.index[-1])
    levels = sorted(bounds)
    if args.json:
        rows = []
        for i, v in enumerate(values):
            row = {"h": i + 1, "timestamp": (last + (i + 1) * step).isoformat(), "value": float(v)}
            row["intervals"] = {
                f"{lv:g}": {"lower": float(bounds[lv][0][i]), "upper": float(bounds[lv][1][i])} for lv in levels
            }
            rows.append(row)
        print(json.dumps({"model": model.model_name, "step_seconds": step.total_seconds(), "forecast": rows}, indent=2))
        return 0
    head = "".join(f"  {f'lower {lv:g}':>12}  {f'upper {lv:g}':>12}" for lv in levels)
    print(f"{'h':>3}  {'timestamp':<25}  {'value':>12}{head}")
    for i, v in enumerate(values):
        cells = "".join(f"  {bounds[lv][0][i]:>12.6g}  {bounds[lv][1][i]:>12.6g}" for lv in levels)
        print(f"{i + 1:>3}  {(last + (i + 1) * step).isoformat():<25}  {v:>12.6g}{cells}")
    if not levels:
        print("(no intervals: this model has no interval calibration)")
    return 0
