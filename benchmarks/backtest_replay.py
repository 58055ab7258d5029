"""The backtest's target: on the request-rate and CPU traces of ../shared/data, does the forecast policy under-provision
fewer steps than the reactive (HPA) policy at no more than 10 % more replica-hours?

Every trace goes through ``daemon.offline.backtest.run_backtest``, the code ``promcast backtest`` runs: the production
default fitted on the first 80 %, a forecast at every step of the last 20 %, a start-up delay of 5 steps, the
capacity per replica set so that the mean load of the fitted part needs 5 replicas, the HPA's 5-minute scale-in
stabilisation. One table per interval level (the same level on every trace: nothing is tuned per trace).

    python -m benchmarks.backtest_replay [--data ../shared/data] [--traces NAME ...] [--fast] [--json out.json]

``--fast`` fits a tiny network for a few epochs: a smoke test of the code, not a figure to cite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from promcast.daemon.cycle.autoscale import Autoscaler, Scaling, needed, replay_metrics
from promcast.daemon.offline.backtest import (
    Backtest,
    BacktestResult,
    PolicyMetrics,
    default_capacity,
    default_scale_in,
    run_backtest,
)
from promcast.daemon.offline.report import document
from promcast.forecaster.evaluation.benchmark import default_data_dir, load_trace

TRACES = (
    "nasa_http_requests_1m",
    "nab_nyc_taxi_30m",
    "alibaba2018_cluster_cpu_30s",
    "nab_ec2_cpu_24ae8d_5m",
    "nab_ec2_cpu_53ea38_5m",
    "nab_ec2_cpu_5f5533_5m",
    "nab_ec2_cpu_77c1ca_5m",
    "nab_ec2_cpu_825cc2_5m",
    "nab_ec2_cpu_fe7f93_5m",
    "nab_asg_misconfig_cpu_5m",
    "nab_grok_asg_cpu_5m",
)
STARTUP_STEPS = 5
COST_LIMIT = 1.10  # at most 10 % more replica-hours than the reactive policy
HEADROOM = 0.8  # the reactive policy with 20 % headroom: the usual alternative to a forecast


def _reactive_with_headroom(r: BacktestResult, s: Scaling) -> PolicyMetrics:
    """The HPA at a target utilisation of HEADROOM on the same replay: what spare capacity alone buys."""
    series, s = r.series, replace(s, target_utilization=HEADROOM)
    initial = int(needed(np.array([series.last[0]]), s)[0])
    replay = Autoscaler(s).run(needed(series.last, s), initial)
    return PolicyMetrics.of(replay_metrics(series.demand, replay, s, r.step_seconds / 3600))


def _met(row: PolicyMetrics, reactive: PolicyMetrics) -> bool:
    fewer = row.under_provisioned_steps < reactive.under_provisioned_steps
    return fewer and row.replica_hours <= COST_LIMIT * reactive.replica_hours


def _below(levels: dict[str, dict[str, PolicyMetrics]], base: str) -> tuple[int, int]:
    """Of ``base``'s points (one per level) whose replica-hours lie within the model's, how many lie above the
    model's curve: the model misses fewer steps for the same replica-hours."""
    hours = np.array([row["forecast"].replica_hours for row in levels.values()])
    share = np.array([row["forecast"].under_provisioned_share for row in levels.values()])
    order = np.argsort(hours)
    wins = inside = 0
    for row in levels.values():
        x, y = row[base].replica_hours, row[base].under_provisioned_share
        if hours.min() <= x <= hours.max():
            inside += 1
            wins += bool(np.interp(x, hours[order], share[order]) < y)
    return wins, inside


def _document(r: BacktestResult, headroom: PolicyMetrics) -> dict[str, Any]:
    """A trace's metrics.json, with the reactive policy at HEADROOM among its policies."""
    doc = document(r)
    doc["policies"]["reactive_headroom"] = asdict(headroom)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data_dir())
    p.add_argument("--traces", nargs="*", default=list(TRACES))
    p.add_argument("--json", type=Path, help="write every trace's metrics here")
    p.add_argument("--fast", action="store_true", help="tiny network and few epochs (a smoke test)")
    args = p.parse_args(argv)
    missing = [t for t in args.traces if not (args.data / f"{t}.csv").exists()]
    if missing:
        print(f"backtest_replay: {args.data} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    results: dict[str, BacktestResult] = {}
    headroom: dict[str, PolicyMetrics] = {}  # per trace: the reactive policy with HEADROOM
    t0 = time.perf_counter()
    for name in args.traces:
        reg = load_trace(args.data, name)
        s = Scaling(default_capacity(reg), startup_steps=STARTUP_STEPS, scale_in_steps=default_scale_in(reg.step))
        r = results[name] = run_backtest(name, reg, Backtest(s, fast=args.fast))
        headroom[name] = _reactive_with_headroom(r, s)
        print(f"{name}: {r.replay.steps} steps, fitted in {r.model.fit_seconds:.1f} s", file=sys.stderr)
    levels = list(next(iter(results.values())).levels)
    print(f"# Autoscaling replay: start-up {STARTUP_STEPS} steps, mean load = 5 replicas, HPA scale-in 5 min\n")
    print("Per cell: share of steps under-provisioned / replica-hours as a ratio of the reactive policy's.")
    print(f"'reactive at {HEADROOM:g}': the HPA with a target utilisation of {HEADROOM:g} (20 % headroom).\n")
    for lv in levels:
        print(f"## level {lv}\n")
        print(f"| trace | reactive | reactive at {HEADROOM:g} | forecast | forecast_naive | forecast_linear | met |")
        print("|---|---|---|---|---|---|---|")
        met = 0
        for name, r in results.items():
            reactive = r.policies["reactive"]
            row = r.levels[lv]
            cells = [
                f"{row[p].under_provisioned_share:.2%} / {row[p].replica_hours / reactive.replica_hours:.3f}"
                for p in ("forecast", "forecast_naive", "forecast_linear")
            ]
            ok = _met(row["forecast"], reactive)
            met += ok
            head = headroom[name]
            share = f"{reactive.under_provisioned_share:.2%} / {reactive.replica_hours:.0f} h"
            share += f" | {head.under_provisioned_share:.2%} / {head.replica_hours / reactive.replica_hours:.3f}"
            print(f"| {name} | {share} | " + " | ".join(cells) + f" | {'yes' if ok else 'NO'} |")
        print(f"\nlevel {lv}: target met on {met} of {len(results)} traces\n")
    print("## At equal replica-hours\n")
    print("The model's trade-off curve (its points over the levels, interpolated in replica-hours) against each")
    print("baseline's points that fall within its range: at how many of them the model misses fewer steps.\n")
    print("| trace | against forecast_naive | against forecast_linear |")
    print("|---|---|---|")
    for name, r in results.items():
        cells = []
        for base in ("forecast_naive", "forecast_linear"):
            wins, inside = _below(r.levels, base)
            cells.append(f"{wins} of {inside}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({name: _document(r, headroom[name]) for name, r in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
