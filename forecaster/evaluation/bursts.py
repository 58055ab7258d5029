"""``promcast bursts``: replay a series through the daemon's burst detector (forecaster.bursts) and, given NAB's
labelled anomaly windows, score it with NAB's method beside a rolling k-sigma detector and the null detector.

Protocol. NAB lets a detector learn during each file's probationary period (its first 15 %, at most 750 rows) and
scores the rest. The forecaster is fitted on exactly those rows (the last fifth of them validates and calibrates
it) and forecasts every step after, each forecast seeing only the data before its origin; every actual value after
the probationary period is scored against the bands of the forecasts that covered it, as the daemon scores it.
(Fitting on the benchmark's first 80 % instead would leave 7 of the 36 labelled windows of ../shared/data to score.)

Detections. A detector's detections are the onsets of its bursts (the step its flag rises), for ours and for the
baselines alike: an alert fires once per burst, and NAB would count each further flagged step outside a window
as another false positive.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..artifact import write_atomic
from ..bursts import BurstParams, combine, excess, flags
from ..data import RegularSeries, load_csv, regularise
from ..names import DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_WINDOW, MODEL_NAMES
from ..protocol import inputs_at, season_for
from .nab import PROFILES, ksigma_detector, nab_score, null_detector, probation_length

__all__ = ["KSIGMA_K", "add_bursts", "ksigma_window", "onsets", "run_bursts"]

KSIGMA_K = 3.0  # the rolling baseline's k, fixed a priori (three standard deviations)
LEVEL = 0.95  # the band the score measures against: the daemon's widest level by default


def onsets(flag: np.ndarray) -> np.ndarray:
    """The steps a flag rises: True where it is set and was not at the step before."""
    f = np.asarray(flag, dtype=bool)
    return f & ~np.concatenate([[False], f[:-1]])


def ksigma_window(step: pd.Timedelta) -> int:
    """The k-sigma baseline's window: one day of steps (at least 12; 288 where a day holds no season)."""
    season = season_for(step)
    return max(12, season if season is not None else 288)


def covering_bands(lower: np.ndarray, upper: np.ndarray, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """From bands (N, H) of the origins first..first+N-1 (origin o forecasts steps o..o+H-1), the bands (T, H) that
    covered each step first..n-1: column h is the forecast made h steps before; NaN where no origin covered it."""
    count, horizon = lower.shape
    times = n - first
    lo, hi = np.full((times, horizon), np.nan), np.full((times, horizon), np.nan)
    for h in range(horizon):
        rows = np.arange(h, min(times, count + h))  # steps first + h .. covered by origin (step - h)
        lo[rows, h], hi[rows, h] = lower[rows - h, h], upper[rows - h, h]
    return lo, hi


def run_bursts(
    name: str,
    reg: RegularSeries,
    params: BurstParams,
    windows: list[list[str]] | None = None,
    model: str = DEFAULT_MODEL,
    fast: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit on the probationary rows, score every later step, flag bursts; with ``windows``, NAB's scores."""
    from ..offline import fit_first_part

    values, n = reg.values, len(reg.values)
    first = math.ceil(probation_length(n))
    index = pd.date_range(reg.start, periods=n, freq=reg.step)
    history = pd.Series(values[:first], index=index[:first])
    fc, about = fit_first_part(history, model, DEFAULT_WINDOW, DEFAULT_HORIZON, 0.2, fast, seed)
    if fc.calibration is None:
        raise ValueError(f"model {model!r} has no interval calibration; burst scores need its bands")
    origins = np.arange(max(first, fc.input_length), n)
    _, bands = fc.predict_interval(inputs_at(values, origins, fc.input_length), (LEVEL,))
    lo, hi = covering_bands(bands[LEVEL][0], bands[LEVEL][1], int(origins[0]), n)
    start = int(origins[0])
    excesses = np.where(np.isnan(lo), np.nan, excess(values[start:, None], lo, hi))  # (T, H): each forecast's
    scores = np.full(n, np.nan)
    scores[start:] = combine(excesses)  # what step_scores computes, kept apart for the benchmark's variants
    flag, _, _ = flags(scores, params)
    ours = onsets(flag)
    kwin = ksigma_window(reg.step)
    baselines = {"ksigma": onsets(ksigma_detector(values, kwin, KSIGMA_K)), "null": null_detector(values)}
    result: dict[str, Any] = {
        "input": name,
        "points": n,
        "step_seconds": reg.step.total_seconds(),
        "fit_points": first,
        "scored_from": str(index[start]),
        "model": about,
        "settings": {
            "threshold": params.threshold,
            "persistence": params.persistence,
            "spike": params.spike,
            "level": LEVEL,
            "ksigma": {"window": kwin, "k": KSIGMA_K},
        },
        "detections": {"promcast": int(ours.sum()), **{k: int(v.sum()) for k, v in baselines.items()}},
        "flagged": [str(t) for t in index[ours]],
    }
    if windows is not None:

        def profiles(detections: np.ndarray) -> dict[str, float]:
            pairs = [(a, b) for a, b in windows or []]
            return {p: nab_score([(index, detections, pairs)], p)["score"] for p in PROFILES}

        result["windows"] = windows
        result["score"] = profiles(ours)
        result["baselines"] = {k: {"score": profiles(v)} for k, v in baselines.items()}
    result["_series"] = {
        "index": index,
        "values": values,
        "scores": scores,
        "flag": flag,
        "onsets": ours,
        "band": (lo[:, 0], hi[:, 0]),
        "start": start,
        "excesses": excesses,
    }
    return result


def write_outputs(out: Path, result: dict[str, Any]) -> list[Path]:
    """metrics.json, bursts.csv (every scored step), report.md and bursts.png in ``out``, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    s = result["_series"]
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    rows = slice(s["start"], None)
    table = pd.DataFrame(
        {
            "timestamp": s["index"][rows],
            "value": s["values"][rows],
            "lower": s["band"][0],
            "upper": s["band"][1],
            "score": s["scores"][rows],
            "burst": s["flag"][rows].astype(int),
            "onset": s["onsets"][rows].astype(int),
        }
    )
    paths = [
        write_atomic(out / "metrics.json", json.dumps(public, indent=2).encode()),
        write_atomic(out / "bursts.csv", table.to_csv(index=False).encode()),
        write_atomic(out / "report.md", _markdown(public).encode()),
        write_atomic(out / "bursts.png", _plot(s, public)),
    ]
    return paths


def _markdown(r: dict[str, Any]) -> str:
    st = r["settings"]
    lines = [
        f"# Bursts: {r['input']}",
        "",
        f"- {r['points']} points of {r['step_seconds']:g} s; the model (`{r['model']['name']}`, window "
        f"{r['model']['window']}) was fitted on the first {r['fit_points']} (NAB's probationary period); steps "
        f"from {r['scored_from']} are scored.",
        f"- A burst: the score (how far outside the {st['level']:g} band of every forecast that covered the step, in "
        f"band widths) above {st['threshold']:g} for {st['persistence']} steps running, or above {st['spike']} once. "
        "Detections are burst onsets.",
        f"- Detections: promcast {r['detections']['promcast']}, k-sigma (window {st['ksigma']['window']}, k "
        f"{st['ksigma']['k']:g}) {r['detections']['ksigma']}.",
    ]
    if "score" in r:
        lines += ["", "| detector | " + " | ".join(PROFILES) + " |", "|---|" + "---:|" * len(PROFILES)]
        rows = {"promcast": r["score"], **{k: v["score"] for k, v in r["baselines"].items()}}
        for name, sc in rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{sc[p]:.1f}" for p in PROFILES) + " |")
        lines += ["", "NAB's normalised score: 0 is the null detector, 100 one detection at the start of every window."]
    lines += ["", "![bursts](bursts.png)", ""]
    return "\n".join(lines)


def _plot(s: dict[str, Any], r: dict[str, Any]) -> bytes:
    import io

    from matplotlib.dates import date2num
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4))
    ax = fig.subplots()
    t = s["index"][s["start"] :]
    ax.plot(s["index"], s["values"], color="black", lw=0.6, label="actual")
    ax.fill_between(t, s["band"][0], s["band"][1], color="tab:blue", alpha=0.3, lw=0, label=f"{LEVEL:g} band (h=1)")
    on = s["onsets"]
    ax.scatter(s["index"][on], s["values"][on], color="tab:red", s=25, zorder=3, label="burst onset")
    for i, (a, b) in enumerate(r.get("windows") or []):
        ax.axvspan(
            float(date2num(pd.Timestamp(a))),
            float(date2num(pd.Timestamp(b))),
            color="tab:orange",
            alpha=0.15,
            lw=0,
            label="labelled window" if i == 0 else None,
        )
    ax.set_title(r["input"], fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


# --- the command -------------------------------------------------------------------------------------------------


def add_bursts(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bursts", help="flag the actual values of a CSV that break the forecast; NAB-score them")
    p.add_argument("--input", required=True, help="CSV of timestamp,value")
    p.add_argument("--value-column", help="the value column (default 'value')")
    p.add_argument("--out", required=True, help="folder for metrics.json, bursts.csv, report.md and bursts.png")
    p.add_argument("--labels", help="JSON mapping a CSV's file stem to its [start, end] windows (NAB's format)")
    p.add_argument("--threshold", type=float, default=BurstParams.threshold, help="band widths (default 1)")
    p.add_argument("--persistence", type=int, default=BurstParams.persistence, help="steps running (default 2)")
    p.add_argument("--spike", type=float, default=BurstParams.spike, help="band widths of a one-step burst (10)")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODEL_NAMES))
    p.add_argument("--fast", action="store_true", help="tiny network and few epochs (for tests)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_bursts_command)


def run_bursts_command(args: argparse.Namespace) -> int:
    try:
        params = BurstParams(args.threshold, args.persistence, args.spike)
    except ValueError as exc:
        print(f"promcast bursts: {exc}", file=sys.stderr)
        return 2
    try:
        stem = Path(args.input).stem
        windows = None
        if args.labels:
            labels = json.loads(Path(args.labels).read_text())
            if stem not in labels:
                print(f"promcast bursts: {args.labels} has no windows for {stem!r}", file=sys.stderr)
                return 2
            windows = labels[stem]
        raw = load_csv(args.input, args.value_column).groupby(level=0, sort=True).mean()
        result = run_bursts(
            stem, regularise(raw, None, max_gap=None), params, windows, args.model, args.fast, args.seed
        )
        for path in write_outputs(Path(args.out), result):
            print(path)
    except (OSError, ValueError) as exc:
        print(f"promcast bursts: {exc}", file=sys.stderr)
        return 1
    print(_markdown({k: v for k, v in result.items() if not k.startswith("_")}).split("\n![")[0])
    return 0
