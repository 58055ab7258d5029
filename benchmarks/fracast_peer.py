"""fracast, the pretrained model's nearest peer, on all 17 traces under ../shared/BENCHMARK.md's protocol.

BENCHMARK.md publishes fracast on 11 of the 17 traces; the pretrained model's target (below fracast on most of the
17) needs all of them. This measures it as BENCHMARK.md describes: zero-shot, each test origin gets its last 2,048
points (NaN-padded on the left where the trace holds fewer), the 0.5 quantile of the next 12 steps is scored as z-MAE
over every origin of the same rolling test windows as ``forecaster.evaluation.benchmark``, beside naive from the same
windows and the figure BENCHMARK.md publishes (where it has one), so that the reproduction shows beside the new
figures.

fracast needs torch and a package of its own, never the project's environment; BENCHMARK.md's recipe, one command
(without the pin pip pulls a CUDA torch of several GB; with it, this machine's pip takes the CPU wheel):

    python3 -m venv /tmp/fracast-venv && /tmp/fracast-venv/bin/pip install torch==2.13.0 fracast pandas
    PYTHONPATH=. /tmp/fracast-venv/bin/python -m benchmarks.fracast_peer [--data ../shared/data] [--json F]

Its weights ship in its wheel (``FracastModel.from_pretrained(weights="fp32")`` reads the package's own files;
nothing is downloaded). Prints figures; asserts nothing. ``--json`` writes fracast's figure per trace;
``forecaster.evaluation.peers.MEASURED_HERE`` holds the six this gave.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from promcast.forecaster.evaluation.benchmark import TRACES, default_data_dir, load_trace
from promcast.forecaster.evaluation.peers import peers_of
from promcast.forecaster.forwards import repeat_last
from promcast.forecaster.protocol import Protocol, error_metrics, inputs_at, make_task

CONTEXT = 2048  # BENCHMARK.md: each origin's last 2,048 points
BATCH = 256


def contexts(values: np.ndarray, origins: np.ndarray, length: int = CONTEXT) -> np.ndarray:
    """(N, length) the points before each origin, NaN where the series holds fewer than ``length``."""
    padded = np.concatenate([np.full(length, np.nan), np.asarray(values, dtype=np.float64)])
    return inputs_at(padded, origins + length, length)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data_dir())
    p.add_argument("--json", type=Path)
    p.add_argument("--traces", nargs="*", default=TRACES)
    args = p.parse_args(argv)
    try:
        import torch
        from fracast import FracastModel
    except ImportError as exc:
        print(
            f"fracast_peer: {exc}; run it in fracast's own environment (see this module's docstring)", file=sys.stderr
        )
        return 2
    torch.set_num_threads(1)
    model = FracastModel.from_pretrained(weights="fp32")
    median = model.quantiles.index(0.5)
    rows: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    for name in args.traces:
        reg = load_trace(args.data, name)
        task = make_task(reg.values, reg.start, reg.step, Protocol())
        targets = task.scaler.transform(task.targets())
        ctx = contexts(reg.values, task.origins)
        point = np.concatenate(
            [
                model.forecast_batch(ctx[i : i + BATCH], horizon=task.horizon)[:, :, median]
                for i in range(0, len(ctx), BATCH)
            ]
        )
        naive = repeat_last(task.inputs(1), task.horizon)
        rows[name] = {
            "fracast": error_metrics(task.scaler.transform(point), targets)["mae"],
            "naive": error_metrics(task.scaler.transform(naive), targets)["mae"],
            "published": peers_of(name).get("fracast", math.nan),
            "origins": len(task.origins),
        }
        print(f"{name}: {rows[name]} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    print("| trace | fracast (this run) | BENCHMARK.md | naive | fracast / naive |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['fracast']:.4f} | {r['published']:.4f} | {r['naive']:.4f} | "
            f"{r['fracast'] / r['naive']:.3f} |"
        )
    ratios = [r["fracast"] / r["naive"] for r in rows.values()]
    print(f"\ngeometric mean of MAE / naive over {len(rows)}: {math.exp(np.mean(np.log(ratios))):.3f}")
    print(f"({time.perf_counter() - t0:.0f} s, one thread)")
    if args.json:
        args.json.write_text(json.dumps({name: r["fracast"] for name, r in rows.items()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
