"""The bands' replay: each shared trace through the daemon's own cycle (as ``benchmarks.guard_replay`` drives it),
step by step over its last 20 %, with the default fitted on the first 80 %.

Prints, per trace and level, the coverage of the published band (the share of actual values inside it, over every
origin and step ahead), its mean width and its mean interval (Winkler) score, beside two baselines on the same
origins: split-conformal (the published point forecast +- the level's quantile of the model's absolute errors per
step ahead, over the last 10 % of the points before the replay) and naive-quantile (the last value +- the same
quantile of naive's errors). Then the targets: the 0.8 band's coverage within 0.75-0.85 and the 0.95 band's within
0.92-0.98, and the Winkler score against split-conformal's.

    python -m benchmarks.band_replay [--data DIR] [--traces NAME ...] [--json band_replay.json]

``--fast`` (a tiny network, a few epochs) and ``--origins N`` (only the first N origins of the replay) make a smoke
test of the code, not figures to cite.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.guard_replay import Fitted, H, arguments, data_dir, fit_trace, replayed
from promcast.daemon.cycle.bands import clip_at_floor
from promcast.daemon.offline.baselines import conformal
from promcast.forecaster.forwards import repeat_last
from promcast.forecaster.protocol import inputs_at, targets_at

LEVELS = (0.8, 0.95)
RANGES = {0.8: (0.75, 0.85), 0.95: (0.92, 0.98)}  # the coverage each level's band must hold
CALIBRATION = 0.1  # the baselines' calibration: this share of the points, just before the replay
KINDS = ("published", "split", "naive")


def winkler(lo: np.ndarray, hi: np.ndarray, actual: np.ndarray, level: float) -> np.ndarray:
    """The interval score of each band: its width, plus 2 / (1 - level) times how far the actual value lies
    outside it."""
    outside = np.maximum(lo - actual, 0.0) + np.maximum(actual - hi, 0.0)
    return (hi - lo) + 2.0 / (1.0 - level) * outside


def _inputs(fitted: Fitted, origins: np.ndarray) -> np.ndarray:
    """(N, input) the model's input windows ending at each origin, as the cycle reads them."""
    return inputs_at(fitted.series.to_numpy(), origins + 1, fitted.forecaster.input_length)


def _actual(fitted: Fitted, origins: np.ndarray) -> np.ndarray:
    return targets_at(fitted.series.to_numpy(), origins + 1, H)


def baselines(fitted: Fitted) -> dict[str, dict[float, np.ndarray]]:
    """Each baseline's half-widths (H,) per level, from the model's and naive's errors at the origins of the
    calibration slice: the last ``CALIBRATION`` of the points before the replay, whose actual values all precede it."""
    start = max(fitted.forecaster.input_length, fitted.cut - int(CALIBRATION * len(fitted.series)))
    cal = np.arange(start, fitted.cut - H)
    windows = _inputs(fitted, cal)
    model = fitted.forecaster.predict(windows)
    if fitted.settings().clip_negative:  # as the cycle clips it
        model = clip_at_floor(windows, model, {})[0]
    actual = _actual(fitted, cal)
    return {
        "split": conformal(model - actual, LEVELS),
        "naive": conformal(repeat_last(windows, H) - actual, LEVELS),
    }


def replay(name: str, data: Path, fast: bool = False, limit: int | None = None) -> dict[str, Any]:
    """The published bands and the baselines' of one trace: coverage, mean width and mean Winkler score per level."""
    fitted = fit_trace(name, data, fast)
    origins = fitted.origins(limit)
    point = np.full((len(origins), H), np.nan)
    bounds = {lv: (np.full((len(origins), H), np.nan), np.full((len(origins), H), np.nan)) for lv in LEVELS}
    t0 = time.perf_counter()
    for row, published in replayed(fitted, {"published": fitted.settings()}, origins):
        fc = published["published"]
        if fc is None or not all(lv in fc.bounds for lv in LEVELS):
            continue
        point[row] = fc.values[0]
        for lv in LEVELS:
            bounds[lv][0][row], bounds[lv][1][row] = fc.bounds[lv][0][0], fc.bounds[lv][1][0]
    replay_s = time.perf_counter() - t0
    ok = np.isfinite(point).all(axis=1)
    at = np.asarray(origins)[ok]
    actual, point = _actual(fitted, at), point[ok]
    last = fitted.series.to_numpy()[at][:, None]
    half = baselines(fitted)
    levels: dict[str, dict[str, dict[str, float]]] = {}
    for lv in LEVELS:
        bands = {
            "published": (bounds[lv][0][ok], bounds[lv][1][ok]),
            "split": (point - half["split"][lv], point + half["split"][lv]),
            "naive": (last - half["naive"][lv], last + half["naive"][lv]),
        }
        levels[str(lv)] = {
            kind: {
                "coverage": float(np.mean((lo <= actual) & (actual <= hi))),
                "width": float(np.mean(hi - lo)),
                "winkler": float(np.mean(winkler(lo, hi, actual, lv))),
            }
            for kind, (lo, hi) in bands.items()
        }
    return {
        "points": len(fitted.series),
        "origins": len(origins),
        "scored_origins": int(ok.sum()),
        "levels": levels,
        "fit_seconds": round(fitted.fit_seconds, 1),
        "replay_seconds": round(replay_s, 1),
    }


def covered(r: dict[str, Any], kind: str = "published") -> dict[float, bool]:
    """Per level, whether ``kind``'s coverage lies in the level's target range."""
    return {lv: RANGES[lv][0] <= r["levels"][str(lv)][kind]["coverage"] <= RANGES[lv][1] for lv in LEVELS}


COLUMNS = (
    "trace", "level", "origins", "coverage", "split-conformal coverage", "naive-quantile coverage", "mean width",
    "Winkler", "split-conformal Winkler", "naive-quantile Winkler", "Winkler ÷ split-conformal",
)  # fmt: skip


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, r in results.items():
        for lv in LEVELS:
            m = r["levels"][str(lv)]
            cov = " | ".join(f"{m[k]['coverage']:.3f}" for k in KINDS)
            score = " | ".join(f"{m[k]['winkler']:.4g}" for k in KINDS)
            ratio = m["published"]["winkler"] / m["split"]["winkler"]
            lines.append(
                f"| {name} | {lv:g} | {r['scored_origins']} | {cov} | {m['published']['width']:.4g} | {score} | "
                f"{ratio:.3f} |"
            )
    return "\n".join(lines)


def summary(results: dict[str, dict[str, Any]]) -> str:
    """The targets: coverage in range per level and at both, and the Winkler score against split-conformal's."""
    n = len(results)
    lines = []
    for kind in KINDS:
        cov = [covered(r, kind) for r in results.values()]
        per = ", ".join(f"{lv:g} on {sum(c[lv] for c in cov)}" for lv in LEVELS)
        lines.append(f"{kind}: coverage in range at both levels on {sum(all(c.values()) for c in cov)} of {n} ({per})")
    for lv in LEVELS:
        scores = [r["levels"][str(lv)] for r in results.values()]
        ratios = [m["published"]["winkler"] / m["split"]["winkler"] for m in scores]
        lines.append(
            f"level {lv:g}: Winkler at most split-conformal's on {sum(x <= 1.0 for x in ratios)} of {n}; "
            f"geometric mean ÷ split-conformal {float(np.exp(np.mean(np.log(ratios)))):.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = arguments("band_replay", __doc__).parse_args(argv)
    data = data_dir("band_replay", args)
    if data is None:
        return 2
    results = {}
    for name in args.traces:
        results[name] = r = replay(name, data, args.fast, args.origins)
        print(f"{name}: done ({r['fit_seconds']} s fit, {r['replay_seconds']} s replay)", file=sys.stderr)
    print(table(results))
    print()
    print(summary(results))
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
