"""Command-line subcommands of the forecasting core (``promcast predict``); daemon/cli.py mounts them."""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from .artifact import ArtifactError
from .data import load_csv
from .frozen import load_frozen

__all__ = ["add_predict"]


def add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="forecast the steps after a CSV with a saved model (inference only)")
    p.add_argument("--model", required=True, help="artifact folder written by Forecaster.save or promcast train")
    p.add_argument("--input", required=True, help="CSV of timestamp,value (or --value-column)")
    p.add_argument("--value-column", default=None, help="value column of the CSV (default: 'value')")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    try:
        model = load_frozen(args.model)
        series = load_csv(args.input, args.value_column)
        values = model.forecast(series)
    except ArtifactError as exc:
        print(f"promcast predict: bad model artifact: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"promcast predict: {exc}", file=sys.stderr)
        return 1
    step = model.step or pd.Timedelta(minutes=1)
    last = pd.Timestamp(series.index[-1])
    rows = [(h, last + h * step, float(v)) for h, v in enumerate(values, start=1)]
    if args.json:
        out = {
            "model": model.model_name,
            "step_seconds": step.total_seconds(),
            "forecast": [{"h": h, "timestamp": ts.isoformat(), "value": v} for h, ts, v in rows],
        }
        print(json.dumps(out, indent=2))
    else:
        for h, ts, v in rows:
            print(f"{h:>3}  {ts.isoformat()}  {v:.6g}")
    return 0
