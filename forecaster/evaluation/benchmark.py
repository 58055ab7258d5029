"""BENCHMARK.md's protocol over the shared traces, and ETTh1 under the Informer protocol.

Run by hand: ``python -m promcast.forecaster.evaluation.benchmark [--traces ...] [--models ...] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import forecaster as core
from ..data import RegularSeries, load_csv, regularise
from ..gate import DEFAULT_GATE, Gate
from ..models import BASELINES, MODELS
from ..names import DEFAULT_HORIZON
from ..protocol import Borders, Protocol, Task, error_metrics, make_task, season_for, window_for
from ..scalers import make_scaler
from ..verdict import below
from .fitting import fit_and_forecast, plan_model
from .peers import PEER_COLUMNS, PUBLISHED, REPRODUCED, best_peer, peers_of

__all__ = ["INFORMER_PUBLISHED", "PEERS", "TRACES", "informer_task", "main", "run_informer", "run_trace", "targets"]

TRACES = tuple(PUBLISHED)  # the 17 traces of ../shared/BENCHMARK.md, in its order
# BENCHMARK.md's z-MAE of the baselines, in TRACES order: the figures a run must reproduce.
PEERS = {m: tuple(peers_of(t)[m] for t in TRACES) for m in REPRODUCED}
PEERS_HORIZON = 12  # BENCHMARK.md's protocol forecasts 12 steps
# The default's accuracy targets, over all of TRACES.
TARGET_WINS = 13  # below every peer on at least this many traces
TARGET_GEOMEAN = 0.65  # geometric mean of MAE / naive at most this
TARGET_GEOMEAN_VS_PEER = 0.90  # ... and at most this times the best full-column peer's
TARGET_WORST = 1.05  # no trace above this times its best peer
NO_SEASON_AR_WINDOW = 48  # BENCHMARK.md: AR's window on the 30-second trace
INFORMER_ROWS = (8640, 11520, 14400)  # train end, validation end, test end (Zhou et al., AAAI 2021)
INFORMER_HORIZONS = (24, 48)
INFORMER_PUBLISHED = {  # (MSE, MAE) by horizon, from ../shared/data/README.md
    "Informer": {24: (0.098, 0.247), 48: (0.158, 0.319)},
    "LSTMa": {24: (0.114, 0.272), 48: (0.193, 0.358)},
    "DeepAR": {24: (0.107, 0.280), 48: (0.162, 0.327)},
    "ARIMA": {24: (0.108, 0.284), 48: (0.175, 0.424)},
    "Prophet": {24: (0.115, 0.275), 48: (0.168, 0.330)},
    "last value repeated": {24: (0.034, 0.139), 48: (0.050, 0.171)},
}


def default_data_dir() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def load_trace(data: Path, name: str) -> RegularSeries:
    """Median step, mean per step, every missing step filled by linear interpolation in time.

    A timestamp written twice (a clock set back, as in ``nab_ec2_netin_5abac7_5m``) is one step: its mean."""
    series = load_csv(data / f"{name}.csv", "OT" if name == "ETTh1" else None)
    series = series.groupby(level=0, sort=True).mean()
    return regularise(series, None, max_gap=None)


def run_trace(
    reg: RegularSeries,
    models: list[str],
    training: dict[str, Any],
    fast: bool = False,
    hparams: dict[str, Any] | None = None,
    protocol_window: bool = False,
    seed: int = 0,
    gate: Gate | str | None = "default",
    horizon: int = DEFAULT_HORIZON,
) -> dict[str, Any]:
    """z-MAE over every origin and step, and fit seconds, of each model on one trace, ``horizon`` steps ahead.

    The peers get BENCHMARK.md's window (two days of steps, capped at 288). The production default gets what the
    daemon gives it, ``DEFAULT_WINDOW`` steps, unless ``protocol_window``: the benchmark measures the default that
    ships, not a variant of it."""
    season, window = season_for(reg.step), window_for(reg.step)
    ar_window = NO_SEASON_AR_WINDOW if season is None else window

    def window_of(m: str) -> int:
        if m == core.DEFAULT_MODEL and not protocol_window:
            return core.DEFAULT_WINDOW
        return ar_window if m == "ar" else window

    plans = [plan_model(m, window_of(m), season, fast, hparams, gate) for m in models]
    task = make_task(
        reg.values, reg.start, reg.step, Protocol(horizon=horizon), None, max(p.input_length for p in plans)
    )
    z_truth = task.scaler.transform(task.targets())
    out: dict[str, Any] = {
        "points": task.borders.n,
        "origins": len(task.origins),
        "window": window,
        "windows": {p.label: p.window for p in plans},
        "input_lengths": {p.label: p.input_length for p in plans},
        "gates": {p.label: p.resolved_gate.to_dict() if p.resolved_gate else None for p in plans},
        "models": {},
    }
    for plan in plans:
        run = fit_and_forecast(plan, task, training, seed)
        scores = error_metrics(task.scaler.transform(run.pred), z_truth)
        out["models"][plan.label] = {
            "z_mae": scores["mae"],
            "z_mse": scores["mse"],
            "z_mae_per_h": scores["mae_per_h"],
            "z_mse_per_h": scores["mse_per_h"],
            "fit_seconds": run.fit_seconds,
            "serves": run.forecaster.serves,  # "naive" where it lost to naive on its validation windows (the verdict)
        }
    return out


def serves_naive(results: dict[str, Any], model: str) -> list[str]:
    """The traces on which ``model``, fitted, serves naive (``forecaster.verdict.judge``)."""
    return [name for name, r in results.items() if r["models"].get(model, {}).get("serves") == "naive"]


def informer_task(reg: RegularSeries, horizon: int) -> Task:
    """Rows [0, 8640) train, [8640, 11520) validation, every window with targets in [11520, 14400)."""
    train_end, val_end, end = INFORMER_ROWS
    if len(reg.values) < end:
        raise ValueError(f"ETTh1 should hold at least {end} rows, got {len(reg.values)}")
    values = reg.values[:end]
    origins = np.arange(val_end, end - horizon + 1)
    scaler = make_scaler("standard", values[:train_end])
    return Task(values, reg.start, reg.step, Borders(end, train_end, val_end), scaler, origins, horizon)


def run_informer(
    reg: RegularSeries,
    models: list[str],
    window: int,
    training: dict[str, Any],
    fast: bool,
    hparams: dict[str, Any] | None = None,
) -> dict:
    """MSE and MAE on the z-scale at horizons 24 and 48; naive is the persistence forecast."""
    out: dict[str, Any] = {}
    for horizon in INFORMER_HORIZONS:
        task = informer_task(reg, horizon)
        z_truth = task.scaler.transform(task.targets())
        rows = {}
        for name in models:
            plan = plan_model(name, window, season_for(reg.step), fast, hparams)
            run = fit_and_forecast(plan, task, training)
            rows[name] = error_metrics(task.scaler.transform(run.pred), z_truth)
            rows[name]["fit_seconds"] = run.fit_seconds
        out[str(horizon)] = {"windows": len(task.origins), "models": rows}
    return out


def geometric_mean_ratio(results: dict[str, Any], model: str) -> float | None:
    """Geometric mean over traces of the model's z-MAE divided by naive's."""
    ratios = [r["models"][model]["z_mae"] / r["models"]["naive"]["z_mae"] for r in results.values()]
    return float(np.exp(np.mean(np.log(ratios)))) if ratios else None


def trace_table(results: dict[str, Any], models: list[str]) -> str:
    """BENCHMARK.md's table (z-MAE over the 12 steps; best in bold), geometric mean, then the fit seconds."""
    head = ["| series | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    lines, seconds = list(head), list(head)
    for name, r in results.items():
        maes = [r["models"][m]["z_mae"] for m in models]
        best = min(maes)
        cells = [f"**{v:.4f}**" if v == best else f"{v:.4f}" for v in maes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        seconds.append(f"| {name} | " + " | ".join(f"{r['models'][m]['fit_seconds']:.1f}" for m in models) + " |")
    ratios = [geometric_mean_ratio(results, m) for m in models]
    lines.append("| geometric mean of MAE ÷ naive | " + " | ".join(f"{g:.3f}" for g in ratios if g is not None) + " |")
    return "\n".join([*lines, "", "Fit seconds (train + validation, once):", "", *seconds])


def targets(results: dict[str, Any], model: str) -> dict[str, Any]:
    """The four accuracy targets for ``model`` over the traces of ``results``, each with its figure and verdict."""
    rows, ratios = [], []
    for name, r in results.items():
        peer, best = best_peer(name)
        ours, naive = r["models"][model]["z_mae"], r["models"]["naive"]["z_mae"]
        if peer in r["models"]:  # a peer this run measured too (naive, AR): its own figure, not BENCHMARK.md's
            best = r["models"][peer]["z_mae"]  # rounded to four decimals
        ratios.append(ours / naive)
        rows.append({"trace": name, "mae": ours, "naive": naive, "best_peer": peer, "best": best})
    geo = float(np.exp(np.mean(np.log(ratios))))
    # The best full-column peer: measured on every trace of the run (BENCHMARK.md's partial columns do not compare).
    full = [c for c in PEER_COLUMNS if all(peers_of(n).get(c) for n in results)]
    peer_geo = {
        c: float(np.exp(np.mean([np.log(peers_of(n)[c] / peers_of(n)["naive"]) for n in results]))) for c in full
    }
    best_full = min(peer_geo, key=lambda c: peer_geo[c])
    beats_naive = sum(below(r["mae"], r["naive"]) for r in rows)
    wins = sum(below(r["mae"], r["best"]) for r in rows)
    worst = max(rows, key=lambda r: r["mae"] / r["best"])
    return {
        "rows": rows,
        "below_naive": {"count": beats_naive, "of": len(rows), "met": beats_naive == len(rows)},
        "below_every_peer": {"count": wins, "of": len(rows), "target": TARGET_WINS, "met": wins >= TARGET_WINS},
        "geomean": {
            "value": geo,
            "target": TARGET_GEOMEAN,
            "best_full_peer": best_full,
            "best_full_peer_value": peer_geo[best_full],
            "met": geo <= TARGET_GEOMEAN and geo <= TARGET_GEOMEAN_VS_PEER * peer_geo[best_full],
        },
        "worst_vs_best_peer": {
            "value": worst["mae"] / worst["best"],
            "trace": worst["trace"],
            "target": TARGET_WORST,
            "met": worst["mae"] / worst["best"] <= TARGET_WORST,
        },
    }


def targets_table(t: dict[str, Any], model: str) -> str:
    """Each trace against naive and its best peer, then the four targets and whether each is met."""
    lines = [f"| series | {model} | naive | ÷ naive | best peer | peer | ÷ best peer |", "|---" * 7 + "|"]
    for r in t["rows"]:
        lines.append(
            f"| {r['trace']} | {r['mae']:.4f} | {r['naive']:.4f} | {r['mae'] / r['naive']:.3f} | {r['best']:.4f} "
            f"| {r['best_peer']} | {r['mae'] / r['best']:.3f} |"
        )
    g, w = t["geomean"], t["worst_vs_best_peer"]
    yes = {True: "met", False: "NOT met"}
    lines += [
        "",
        f"1. MAE below naive's on every trace: {t['below_naive']['count']} of {t['below_naive']['of']} "
        f"({yes[t['below_naive']['met']]})",
        f"2. below every peer on at least {TARGET_WINS}: {t['below_every_peer']['count']} of "
        f"{t['below_every_peer']['of']} ({yes[t['below_every_peer']['met']]})",
        f"3. geometric mean of MAE ÷ naive at most {TARGET_GEOMEAN} and at most {TARGET_GEOMEAN_VS_PEER} × the best "
        f"full-column peer's ({g['best_full_peer']} {g['best_full_peer_value']:.3f}): {g['value']:.3f} "
        f"({yes[g['met']]})",
        f"4. no trace above {TARGET_WORST} × its best peer: worst {w['value']:.3f} on {w['trace']} ({yes[w['met']]})",
    ]
    return "\n".join(lines)


def horizon_table(results: dict[str, Any], models: list[str]) -> str:
    """z-scale MAE and MSE for each horizon step, per trace and model, all from this run."""
    lines = []
    for name, r in results.items():
        steps = len(next(iter(r["models"].values()))["z_mae_per_h"])
        lines += [f"**{name}**", "", "| model | metric | " + " | ".join(f"h{h}" for h in range(1, steps + 1)) + " |"]
        lines.append("|---|---" + "|---" * steps + "|")
        for m in models:
            for metric in ("mae", "mse"):
                cells = " | ".join(f"{v:.4f}" for v in r["models"][m][f"z_{metric}_per_h"])
                lines.append(f"| {m} | {metric.upper()} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def reproduction_table(results: dict[str, Any]) -> str:
    """The baselines against BENCHMARK.md's figures: ours, theirs and the difference."""
    lines = ["| series | model | this run | BENCHMARK.md | difference |", "|---|---|---|---|---|"]
    for name, r in results.items():
        for model, figures in PEERS.items():
            if model in r["models"]:
                ours, theirs = r["models"][model]["z_mae"], figures[TRACES.index(name)]
                lines.append(f"| {name} | {model} | {ours:.4f} | {theirs:.4f} | {ours - theirs:+.4f} |")
    return "\n".join(lines)


def informer_table(results: dict[str, Any]) -> str:
    cols = [f"h{h} MSE | h{h} MAE" for h in INFORMER_HORIZONS]
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (2 * len(INFORMER_HORIZONS) + 1) + "|"]
    for name in results[str(INFORMER_HORIZONS[0])]["models"]:
        cells = [results[str(h)]["models"][name] for h in INFORMER_HORIZONS]
        label = "naive (persistence)" if name == "naive" else name
        lines.append(f"| {label} | " + " | ".join(f"{c['mse']:.4f} | {c['mae']:.4f}" for c in cells) + " |")
    for name, figures in INFORMER_PUBLISHED.items():
        cells = [figures[h] for h in INFORMER_HORIZONS]
        lines.append(f"| {name} (published) | " + " | ".join(f"{mse:.3f} | {mae:.3f}" for mse, mae in cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m promcast.forecaster.evaluation.benchmark", description=__doc__)
    p.add_argument("--data", type=Path, default=None, help="the traces (default: shared/data beside the clone)")
    p.add_argument("--traces", nargs="*", choices=TRACES, default=list(TRACES), help="traces (default all)")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), help="models (the baselines always run too)")
    p.add_argument("--no-informer", action="store_true", help="skip the ETTh1 Informer-protocol table")
    p.add_argument(
        "--protocol-window",
        action="store_true",
        help="give the default model the peers' window (BENCHMARK.md) instead of its own DEFAULT_WINDOW",
    )
    p.add_argument("--informer-window", type=int, default=96, help="input window for the Informer table")
    p.add_argument("--epochs", type=int, help="training epochs (default TrainConfig's)")
    p.add_argument(
        "--horizon",
        type=int,
        default=DEFAULT_HORIZON,
        help=f"steps forecast (default {DEFAULT_HORIZON}); the peers' comparison holds at {PEERS_HORIZON} only",
    )
    p.add_argument("--seed", type=int, default=0, help="training seed of the learned models (default 0)")
    p.add_argument(
        "--gate",
        default="default",
        help="the learned models' gate: default, none, or JSON fields of forecaster.gate.Gate, e.g. "
        '\'{"steps": 24, "stride": 1}\'',
    )
    p.add_argument("--max-batches", type=int, help="batches per epoch, 0 for all")
    p.add_argument("--fast", action="store_true", help="tiny networks and a few epochs (a smoke test)")
    p.add_argument(
        "--hparams", default="{}", help="JSON hyperparameters for the learned models, e.g. '{\"members\": 1}'"
    )
    p.add_argument("--train", default="{}", help='JSON training overrides, e.g. \'{"loss": "mse", "refit": false}\'')
    p.add_argument("--json", type=Path, default=Path("benchmark.json"), help="where to write every figure")
    return p


def _training(args: argparse.Namespace) -> dict[str, Any]:
    changes = {"epochs": args.epochs, "max_batches": args.max_batches}
    return {**json.loads(args.train), **{k: v for k, v in changes.items() if v is not None}}


def _gate(text: str) -> Gate | str | None:
    if text in ("default", "none"):
        return None if text == "none" else "default"
    return dataclasses.replace(DEFAULT_GATE, **json.loads(text))


def _missing(data: Path, names: list[str]) -> list[str]:
    return [n for n in names if not (data / f"{n}.csv").is_file()]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data = args.data or default_data_dir()
    wanted = list(args.traces) + ([] if args.no_informer or "ETTh1" in args.traces else ["ETTh1"])
    missing = _missing(data, wanted)
    if missing:
        print(
            f"benchmark: the shared traces are not in {data} (missing {', '.join(missing)}); pass --data DIR",
            file=sys.stderr,
        )
        return 2
    models = list(dict.fromkeys([*BASELINES, *(args.models or [core.DEFAULT_MODEL])]))
    training = _training(args)
    out: dict[str, Any] = {
        "models": models,
        "default_model": core.DEFAULT_MODEL,
        "hparams": json.loads(args.hparams),
        "training_overrides": training,
        "seed": args.seed,
        "gate": args.gate,
        "horizon": args.horizon,
        "traces": {},
    }
    for name in args.traces:
        out["traces"][name] = run_trace(
            load_trace(data, name),
            models,
            training,
            args.fast,
            json.loads(args.hparams),
            args.protocol_window,
            args.seed,
            _gate(args.gate),
            args.horizon,
        )
        print(f"{name}: done", file=sys.stderr)
    if out["traces"]:
        out["geometric_mean_vs_naive"] = {m: geometric_mean_ratio(out["traces"], m) for m in models}
        print(trace_table(out["traces"], models), end="\n\n")
        for m in models:
            if declined := serves_naive(out["traces"], m):
                print(f"{m} lost to naive on its own validation windows and serves naive on: {', '.join(declined)}\n")
        if args.horizon == PEERS_HORIZON:  # BENCHMARK.md's peers forecast 12 steps: no comparison at another horizon
            print(reproduction_table(out["traces"]), end="\n\n")
            model = core.DEFAULT_MODEL if core.DEFAULT_MODEL in models else models[-1]
            out["targets"] = targets(out["traces"], model)
            ran = len(out["traces"])
            scope = "" if ran == len(TRACES) else f" (on {ran} of the {len(TRACES)} traces only)"
            print(f"Accuracy targets for {model}{scope}:\n\n" + targets_table(out["targets"], model), end="\n\n")
        else:
            print(f"horizon {args.horizon}: BENCHMARK.md's peers forecast {PEERS_HORIZON} steps; no peer comparison\n")
        print("Per horizon step, z-scale:\n\n" + horizon_table(out["traces"], models))
    if not args.no_informer:
        learned = [m for m in models if m != "seasonal_naive"]
        reg = load_trace(data, "ETTh1")
        out["informer"] = run_informer(
            reg, learned, args.informer_window, training, args.fast, json.loads(args.hparams)
        )
        print("ETTh1 (OT), Informer protocol, z-scale:\n\n" + informer_table(out["informer"]))
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
