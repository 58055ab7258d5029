"""The pretrained model on traces it never saw: two-fold cross-validation over the traces of ../shared/data.

    python -m benchmarks.pretrained_unseen [--data ../shared/data] [--seed 0] [--mixed N] [--mixups N]
        [--periods P ...] [--traces NAME ...] [--epochs N] [--hidden N] [--json F] [--corpus DIR | --no-corpus]

The shipped model (``forecaster/pretrained``) saw the first 80 % of 16 of the 17 traces, so its zero-shot figures
(``benchmarks.pretrained_zero_shot``) are out of sample in time but not in kind: a user's workload is a trace it
never saw. Here ``forecaster.pretrain`` is run twice with the same recipe and seed, each time on one half of the 16
shareable traces (alternate traces in ``TRACES`` order, fixed before any run), on all of the synthetic series and on
all of the corpus folder (``--corpus``, by default ``corpus`` beside the data folder; none of its series is a
benchmark trace; ``--no-corpus``: the recipe before it), and each trace is forecast by the model that did not see it
at all (ETTh1, which neither sees: the geometric mean of the two). Same test windows and z-MAE as
``benchmarks.pretrained_zero_shot``; naive from the same windows; fracast as ../shared/BENCHMARK.md publishes it,
and on the six traces it lacks as ``benchmarks.fracast_peer`` measured it
(``forecaster.evaluation.peers.fracast_of``). ``--mixed N`` and ``--mixups N`` change how many of those the corpus
holds (``--no-corpus --mixed 0 --mixups 0``: the first shipped recipe; ``--no-corpus --mixups 0``: the one after
it); ``--periods`` with no value leaves out the seasonal feature (the recipe before it). Prints figures; asserts
nothing. ``--traces`` (the folds cut from those alone), ``--epochs`` and ``--no-corpus --mixed 0 --mixups 0`` make a
smoke test of the code, not figures to cite.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from promcast.forecaster import load_pretrained
from promcast.forecaster.corpus import missing
from promcast.forecaster.evaluation.benchmark import TRACES, default_data_dir, load_trace
from promcast.forecaster.evaluation.peers import fracast_of
from promcast.forecaster.forwards import repeat_last
from promcast.forecaster.numpy_runtime import load_frozen
from promcast.forecaster.pretrain import EXCLUDED, MIXED, MIXUPS, PERIODS, pretrain
from promcast.forecaster.protocol import Protocol, error_metrics, make_task


def _z_maes(models: dict[str, Any], data: Path, traces: list[str]) -> dict[str, dict[str, float]]:
    """Per trace: each model's z-MAE and naive's over the benchmark's test windows."""
    length = max(m.input_length for m in models.values())
    out: dict[str, dict[str, float]] = {}
    for name in traces:
        reg = load_trace(data, name)
        task = make_task(reg.values, reg.start, reg.step, Protocol(), None, length)
        inputs, targets = task.inputs(length), task.scaler.transform(task.targets())
        row = {"naive": error_metrics(task.scaler.transform(repeat_last(inputs, targets.shape[1])), targets)}
        row |= {k: error_metrics(task.scaler.transform(m.predict(inputs)), targets) for k, m in models.items()}
        out[name] = {k: v["mae"] for k, v in row.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data_dir())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    p.add_argument("--mixed", type=int, default=MIXED, help=f"mixed synthetic series (default {MIXED}; 0: none)")
    p.add_argument("--mixups", type=int, default=MIXUPS, help=f"mixups (default {MIXUPS}; 0: none)")
    p.add_argument(
        "--periods", type=int, nargs="*", default=list(PERIODS), help="the mlp's candidate seasons; none: no feature"
    )
    p.add_argument("--traces", nargs="+", choices=TRACES, default=list(TRACES), help="default: all 17")
    p.add_argument("--epochs", type=int, help="at most this many epochs (default: early stopping decides)")
    p.add_argument("--hidden", type=int, help="the mlp's hidden units (default: the shipped recipe's)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--corpus", type=Path, help="real workload series (default: corpus beside the data folder)")
    source.add_argument("--no-corpus", action="store_true", help="leave the corpus out (the recipe before it)")
    args = p.parse_args(argv)
    corpus = None if args.no_corpus else (args.corpus or args.data.parent / "corpus")
    if corpus is not None and (lacking := missing(corpus)):
        print(f"pretrained_unseen: {corpus} lacks {', '.join(lacking)}", file=sys.stderr)
        return 2
    if not all((args.data / f"{t}.csv").exists() for t in args.traces):
        print(f"pretrained_unseen: {args.data} lacks some of the {len(args.traces)} traces", file=sys.stderr)
        return 2
    shareable = [t for t in args.traces if t not in EXCLUDED]
    folds = {"A": shareable[0::2], "B": shareable[1::2]}
    t0 = time.perf_counter()
    models: dict[str, Any] = {"shipped": load_pretrained()}
    with tempfile.TemporaryDirectory() as tmp:
        for fold, traces in folds.items():
            report = pretrain(
                args.data,
                Path(tmp) / fold,
                args.seed,
                traces=traces,
                mixed=args.mixed,
                mixups=args.mixups,
                periods=args.periods,
                epochs=args.epochs,
                corpus=corpus,
                hidden=args.hidden,
            )
            print(f"fold {fold}: {report['corpus']} in {report['seconds']:.0f} s", file=sys.stderr)
            models[fold] = load_frozen(Path(tmp) / fold / "artifact")
        maes = _z_maes(models, args.data, args.traces)
    rows: dict[str, dict[str, float]] = {}
    for name, m in maes.items():
        if name in folds["A"]:
            unseen = m["B"]
        elif name in folds["B"]:
            unseen = m["A"]
        else:  # seen by neither
            unseen = math.sqrt(m["A"] * m["B"])
        rows[name] = {
            "unseen": unseen / m["naive"],
            "shipped": m["shipped"] / m["naive"],
            "fracast": fracast_of(name) / m["naive"],
            "naive_z_mae": m["naive"],
        }
    print("| trace | held out (MAE / naive) | shipped, saw its first 80 % | fracast |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['unseen']:.3f} | {r['shipped']:.3f} | {r['fracast']:.3f} |")

    def geomean(key: str) -> float:
        return math.exp(np.nanmean([math.log(r[key]) for r in rows.values()]))

    below = sum(r["unseen"] < 1 for r in rows.values())
    beats = sum(r["unseen"] < r["fracast"] for r in rows.values())
    measured = sum(not math.isnan(r["fracast"]) for r in rows.values())
    print(
        f"\ngeometric mean of MAE / naive: held out {geomean('unseen'):.3f}, shipped {geomean('shipped'):.3f}, "
        f"fracast {geomean('fracast'):.3f} (its {measured} traces)"
    )
    print(f"held out: below naive on {below} of {len(rows)}, below fracast on {beats} of {measured}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"folds": folds, "traces": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
