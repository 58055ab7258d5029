"""The pretrained model's targets: zero-shot (no fitting on the trace at all) under
../shared/BENCHMARK.md's protocol on its 17 traces, beside naive, fracast (published there; on the six traces it
lacks, as ``benchmarks.fracast_peer`` measured it: ``forecaster.evaluation.peers.fracast_of``) and the production
default fitted on each trace; and the NumPy runtime's latency on one thread.

``--experts`` scores, on the same test windows, what the shipped model's gate chooses between (``forecaster.gate``):
its network alone, naive, and the window's median, beside the gated forecast; and the best of the three in each
window, chosen in hindsight. No rule that picks one of the three for a window can beat that column (a mix can, in a
window where their errors have opposite signs): where it is above a peer, the experts themselves are short of the
peer, not the gate's choice. A few seconds, no fitting.

    python -m benchmarks.pretrained_zero_shot [--data ../shared/data] [--json out.json] [--card]
        [--traces NAME ...] [--fast] [--artifact DIR]
    python -m benchmarks.pretrained_zero_shot --latency ARTIFACT [ARTIFACT ...]
    python -m benchmarks.pretrained_zero_shot --blocks 16 32 64 128 256 1000
    python -m benchmarks.pretrained_zero_shot --experts [--data ../shared/data] [--traces NAME ...] [--artifact DIR]

The fitted default goes through ``forecaster.evaluation.benchmark.run_trace`` (the benchmark's own code); the
pretrained model forecasts the same test windows of the same task, zero-shot and fine-tuned
(``Forecaster.fine_tune`` on the trace's train part, stopped early on its validation part: the rows the fitted
default sees). ``--traces`` and ``--fast`` (the fitted default a tiny network, it and the fine-tuning a few epochs)
make a smoke test of the code, not figures to cite. ``--artifact`` scores a candidate (the ``artifact`` folder that
``forecaster.pretrain --out`` writes) in place of the shipped model; ``--card`` then writes the card beside it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from promcast.forecaster import DEFAULT_MODEL, PRETRAINED, Forecaster, load_pretrained
from promcast.forecaster.evaluation.benchmark import TRACES, default_data_dir, load_trace, run_trace
from promcast.forecaster.evaluation.peers import fracast_of
from promcast.forecaster.forecaster import FAST_TRAINING
from promcast.forecaster.forwards import repeat_last
from promcast.forecaster.gate import median_level
from promcast.forecaster.numpy_runtime import ArrayForecaster, load_frozen
from promcast.forecaster.protocol import Borders, Protocol, error_metrics, make_task

CARD_SECTION = "## Zero-shot accuracy (no fitting on the trace)"
LEVELS = (0.8, 0.95)


def _latency(model: Any) -> dict[str, float]:
    """predict_next_12 p50 over 1,000 calls, and one batch of 1,000 series, on one thread."""
    rng = np.random.default_rng(0)
    windows = 50 + 10 * rng.standard_normal((1000, model.input_length))
    with threadpool_limits(1):
        model.predict(windows[:10])  # warm
        single = []
        for w in windows:
            t0 = time.perf_counter()
            model.predict_next_12(w)
            single.append(time.perf_counter() - t0)
        batch = []
        for _ in range(20):
            t0 = time.perf_counter()
            model.predict(windows)
            batch.append(time.perf_counter() - t0)
    return {"next_12_p50_ms": float(np.median(single) * 1e3), "batch_1000_ms": float(np.median(batch) * 1e3)}


def compare_latency(others: list[Path], rounds: int = 3) -> int:
    """The shipped model and each artifact in ``others``, timed in turn ``rounds`` times in this one process, so that
    the machine's own drift over minutes falls on all of them alike."""
    models = {"shipped": load_pretrained(), **{str(p): load_frozen(p) for p in others}}
    for r in range(rounds):
        for name, model in models.items():
            lat = _latency(model)
            print(f"round {r + 1} {name}: p50 {lat['next_12_p50_ms']:.3f} ms, batch {lat['batch_1000_ms']:.1f} ms")
    return 0


def compare_blocks(blocks: list[int], rounds: int = 3) -> int:
    """The shipped model's latency with its batch cut into blocks of each size (``Predictor.block``), in turn
    ``rounds`` times in this one process."""
    model = load_pretrained()
    for r in range(rounds):
        for block in blocks:
            model.block = block
            lat = _latency(model)
            p50, batch = lat["next_12_p50_ms"], lat["batch_1000_ms"]
            print(f"round {r + 1} block {block}: p50 {p50:.3f} ms, batch {batch:.1f} ms")
    return 0


EXPERTS = ("gated", "network", "naive", "median")


def compare_experts(data: Path, traces: list[str], artifact: Path | None = None) -> int:
    """Per trace, z-MAE over the test windows of the shipped model (or ``artifact``) gated, of each expert its gate
    weighs, and of the best expert of each window in hindsight; the geometric means of MAE / naive and the counts
    below fracast."""
    gated = load_frozen(artifact) if artifact else load_pretrained()
    network = copy.copy(gated)  # the same weights and scaler, with no gate: the network on its own window
    network.gate = None
    ratios: dict[str, list[float]] = {k: [] for k in (*EXPERTS, "best")}
    below: dict[str, int] = dict.fromkeys(ratios, 0)
    print("| trace | " + " | ".join(EXPERTS) + " | best of network, naive, median in hindsight | fracast |")
    print("|---|" + "---:|" * (len(EXPERTS) + 2))
    for name in traces:
        reg = load_trace(data, name)
        task = make_task(reg.values, reg.start, reg.step, Protocol(), None, gated.input_length)
        inputs, targets = task.inputs(gated.input_length), task.scaler.transform(task.targets())
        last = inputs[:, -gated.window :]
        forecasts = {
            "gated": gated.predict(inputs),
            "network": network.predict(last),
            "naive": repeat_last(inputs, gated.horizon),
            "median": np.repeat(median_level(last)[:, None], gated.horizon, axis=1),
        }
        # each window's MAE (N,) per expert, on the z-scale of the trace's train part
        per_window = {k: np.abs(task.scaler.transform(f) - targets).mean(axis=1) for k, f in forecasts.items()}
        mae = {k: float(v.mean()) for k, v in per_window.items()}
        mae["best"] = float(np.minimum.reduce([per_window[k] for k in ("network", "naive", "median")]).mean())
        fracast = fracast_of(name)
        for k, v in mae.items():
            ratios[k].append(v / mae["naive"])
            below[k] += v < fracast
        cells = " | ".join(f"{mae[k]:.4f}" for k in (*EXPERTS, "best"))
        print(f"| {name} | {cells} | {fracast:.4f} |")
    print()
    for k, r in ratios.items():
        print(
            f"{k}: geometric mean of MAE / naive {math.exp(np.mean(np.log(r))):.3f}, below naive on "
            f"{sum(x < 1 for x in r)} of {len(r)}, below fracast on {below[k]} of {len(r)}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data_dir())
    p.add_argument("--json", type=Path)
    p.add_argument("--card", action="store_true", help="write the table into forecaster/pretrained/MODEL_CARD.md")
    p.add_argument(
        "--latency",
        nargs="+",
        type=Path,
        metavar="ARTIFACT",
        help="only time the shipped model beside these artifacts (say, an earlier pretrained model's), in turn",
    )
    p.add_argument(
        "--blocks",
        nargs="+",
        type=int,
        metavar="SERIES",
        help=f"only time the shipped model, its batch in blocks of these sizes (shipped: {ArrayForecaster.block})",
    )
    p.add_argument(
        "--experts",
        action="store_true",
        help="only score the gate's experts (network, naive, window median) and the best of them in hindsight",
    )
    p.add_argument("--traces", nargs="+", choices=TRACES, default=list(TRACES), help="default: all 17")
    p.add_argument("--fast", action="store_true", help="tiny fitted network, few epochs of fine-tuning (a smoke test)")
    p.add_argument("--artifact", type=Path, help="score this pretrained artifact in place of the shipped one")
    args = p.parse_args(argv)
    if args.latency:
        return compare_latency(args.latency)
    if args.blocks:
        if min(args.blocks) < 1:
            p.error("--blocks: each size is at least 1 series")
        return compare_blocks(args.blocks)
    if not all((args.data / f"{t}.csv").exists() for t in args.traces):
        print(f"pretrained_zero_shot: {args.data} lacks some of the {len(args.traces)} traces", file=sys.stderr)
        return 2
    if args.experts:
        return compare_experts(args.data, args.traces, args.artifact)
    model = load_frozen(args.artifact) if args.artifact else load_pretrained()
    base = Forecaster.load(args.artifact or PRETRAINED)  # torch: fine-tuning trains
    rows: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    for name in args.traces:
        reg = load_trace(args.data, name)
        fitted = run_trace(reg, ["naive", DEFAULT_MODEL], {}, args.fast)
        length = max(fitted["input_lengths"].values())
        task = make_task(reg.values, reg.start, reg.step, Protocol(), None, length)
        assert len(task.origins) == fitted["origins"], name  # the same test windows
        inputs, targets = task.inputs(model.input_length), task.scaler.transform(task.targets())
        point, bands = model.predict_interval(inputs, LEVELS)
        z = error_metrics(task.scaler.transform(point), targets)["mae"]
        actual = task.targets()
        cover = {lv: float(np.mean((lo <= actual) & (actual <= hi))) for lv, (lo, hi) in bands.items()}
        b = Borders.from_fractions(len(reg.values), Protocol())
        # The protocol's validation rows, as the fitted default's:
        val_ratio, training = (b.val_end - b.train_end) / b.val_end, FAST_TRAINING if args.fast else None
        tuned = base.fine_tune(reg.values[: b.val_end], step=reg.step, training=training, val_ratio=val_ratio)
        rows[name] = {
            "pretrained": z,
            "fine_tuned": error_metrics(task.scaler.transform(tuned.predict(inputs)), targets)["mae"],
            "fitted": fitted["models"][DEFAULT_MODEL]["z_mae"],
            "naive": fitted["models"]["naive"]["z_mae"],
            "fracast": fracast_of(name),
            **{f"coverage_{lv:g}": c for lv, c in cover.items()},
        }
        print(f"{name}: {rows[name]}", file=sys.stderr)
    out: list[str] = []
    say = out.append
    say("| trace | pretrained | fine-tuned | fitted default | naive | fracast | pretrained / naive | below fracast |")
    say("|---|---:|---:|---:|---:|---:|---:|---|")
    below_naive = below_fracast = 0
    for name, r in rows.items():
        ratio = r["pretrained"] / r["naive"]
        below_naive += ratio < 1
        below_fracast += r["pretrained"] < r["fracast"]
        mark = "n/a" if math.isnan(r["fracast"]) else "yes" if r["pretrained"] < r["fracast"] else "no"
        say(
            f"| {name} | {r['pretrained']:.4f} | {r['fine_tuned']:.4f} | {r['fitted']:.4f} | {r['naive']:.4f} | "
            f"{r['fracast']:.4f} | "
            f"{ratio:.3f} | {mark} |"
        )

    def geomean(key: str) -> float:  # over the traces that have the figure
        return math.exp(np.nanmean([math.log(r[key] / r["naive"]) for r in rows.values()]))

    lat = _latency(model)
    say(
        f"\nbelow naive on {below_naive} of {len(rows)} (target: all); below fracast on {below_fracast} of "
        f"{sum(not math.isnan(r['fracast']) for r in rows.values())} measured (target 13 of 17)"
    )
    say(
        f"geometric mean of MAE / naive: pretrained {geomean('pretrained'):.3f}, fine-tuned "
        f"{geomean('fine_tuned'):.3f}, fitted default {geomean('fitted'):.3f}, fracast {geomean('fracast'):.3f} "
        "(target: pretrained <= fitted)"
    )
    say(
        f"NumPy runtime, one thread: predict_next_12 p50 {lat['next_12_p50_ms']:.3f} ms (target <= 1), "
        f"1,000-series batch {lat['batch_1000_ms']:.1f} ms (target <= 50)"
    )
    say("\nIntervals (conformal on the corpus, no adaptation to the trace): share of the test values inside the band")
    say("\n| trace | " + " | ".join(f"{lv:g} band" for lv in LEVELS) + " |")
    say("|---|" + "---:|" * len(LEVELS))
    for name, r in rows.items():
        say(f"| {name} | " + " | ".join(f"{r[f'coverage_{lv:g}']:.3f}" for lv in LEVELS) + " |")
    say(
        "median over the traces: "
        + ", ".join(f"{lv:g} band {np.median([r[f'coverage_{lv:g}'] for r in rows.values()]):.3f}" for lv in LEVELS)
        + " (the daemon's online adaptation then corrects each target's)"
    )
    print("\n".join(out))
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.card:
        card = (args.artifact or PRETRAINED).parent / "MODEL_CARD.md"
        head = card.read_text().split(CARD_SECTION)[0].rstrip("\n")
        body = "z-MAE (the z-scale of each trace's train part) over every test window of the benchmark's "
        body += "protocol, 12 steps ahead, from `python -m benchmarks.pretrained_zero_shot --card` (2-core CPU):"
        card.write_text(f"{head}\n\n{CARD_SECTION}\n\n{body}\n\n" + "\n".join(out) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"traces": rows, "latency": lat}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
