"""The guard's replay: each shared trace through the daemon's own cycle (ForecastJob: windows, the default model,
the quality tracker, the live guard), step by step over its last 20 %, with the model fitted on the first 80 %.

Prints, per trace, the MAE of the published forecast with the guard, of the model alone (the same cycle with the
guard off), and of naive, over every origin of the replay and every step ahead; then the targets: the guard at
most naive's MAE on every trace, and within 2 % of the model's where the model beats naive.

    python -m benchmarks.guard_replay [--data DIR] [--traces NAME ...] [--json guard_replay.json]

``--fast`` (a tiny network, a few epochs) and ``--origins N`` (only the first N origins of the replay) make a smoke
test of the code, not figures to cite.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from promcast.daemon.clock import align
from promcast.daemon.cycle.job import ForecastJob
from promcast.daemon.http.families import TargetForecast
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import configure_logging
from promcast.daemon.models.serving import ModelHolder
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources.replay import ReplaySource
from promcast.forecaster import DEFAULT_MODEL, DEFAULT_WINDOW, Forecaster
from promcast.forecaster.evaluation.benchmark import TRACES, default_data_dir, load_trace
from promcast.forecaster.forecaster import FAST_TRAINING, fast_hparams
from promcast.forecaster.verdict import at_most, below

TRAIN = 0.8
H = 12


def _job(target: TargetSettings, source: ReplaySource, store: ModelStore) -> ForecastJob:
    metrics = Metrics(CollectorRegistry(), [target.name], clock=lambda: source.now().timestamp())
    return ForecastJob(target, source, ModelHolder(store, target), metrics, 3.0)


@dataclass(frozen=True)
class Fitted:
    """One trace on its step grid, and the default fitted on its first 80 %."""

    name: str
    series: pd.Series
    step: timedelta
    cut: int  # the first point of the replayed part
    forecaster: Forecaster
    fit_seconds: float

    def origins(self, limit: int | None = None) -> range:
        """The replay's origins: every step of the last 20 % with a full horizon after it, or the first ``limit``."""
        end = len(self.series) - H
        return range(self.cut, end if limit is None else min(end, self.cut + limit))

    def settings(self, **extra: Any) -> TargetSettings:
        """The target the daemon would run on this trace, with ``extra`` settings."""
        history = self.step * len(self.series)
        base = {"step_seconds": self.step.total_seconds(), "window": DEFAULT_WINDOW, "history": history}
        return TargetSettings(name="t", query=self.name, **base, **extra)


def fit_trace(name: str, data: Path, fast: bool = False) -> Fitted:
    """Load ``name`` onto a step-aligned grid and fit the default on its first 80 %; ``fast``: a tiny network
    trained briefly."""
    reg = load_trace(data, name)
    step = reg.step.to_pytimedelta()
    start = pd.Timestamp(align(reg.start.to_pydatetime(), step))  # the replay's grid sits on step boundaries
    series = pd.Series(reg.values, index=pd.date_range(start, periods=len(reg.values), freq=reg.step))
    cut = int(len(series) * TRAIN)
    t0 = time.perf_counter()
    tiny: dict[str, Any] = {"training": FAST_TRAINING, **fast_hparams(DEFAULT_MODEL)} if fast else {}
    f = Forecaster(DEFAULT_MODEL, window=DEFAULT_WINDOW, step=step, **tiny).fit(series.iloc[:cut])
    return Fitted(name, series, step, cut, f, time.perf_counter() - t0)


def replayed(
    fitted: Fitted, targets: dict[str, TargetSettings], origins: range
) -> Iterator[tuple[int, dict[str, TargetForecast | None]]]:
    """Each target's cycle at every origin, in order: (row, kind -> the snapshot published at that origin, or None
    where the cycle published none)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = ModelStore(Path(tmp), "t")
        store.publish(fitted.forecaster)
        source = ReplaySource(fitted.series)
        jobs = {kind: _job(target, source, store) for kind, target in targets.items()}
        for row, i in enumerate(origins):
            source.at = fitted.series.index[i].to_pydatetime()
            out: dict[str, TargetForecast | None] = {}
            for kind, job in jobs.items():
                result = job()
                ok = result.ok and result.end == source.at
                out[kind] = job.metrics.snapshot()[0]["t"] if ok else None
            yield row, out


def replay(
    name: str, data: Path, guard: dict[str, Any] | None = None, fast: bool = False, limit: int | None = None
) -> dict[str, Any]:
    """The replay of one trace; ``fast``: a tiny network trained briefly; ``limit``: at most that many origins."""
    fitted = fit_trace(name, data, fast)
    series, fit_s = fitted.series, fitted.fit_seconds
    targets = {"guard": fitted.settings(guard=guard or {}), "model": fitted.settings(guard={"enabled": False})}
    origins = fitted.origins(limit)
    pred = {k: np.full((len(origins), H), np.nan) for k in targets}
    on_fallback = 0
    t0 = time.perf_counter()
    for row, published in replayed(fitted, targets, origins):
        for kind, fc in published.items():
            if fc is not None:
                pred[kind][row] = fc.values[0]
                if kind == "guard" and fc.sources and fc.sources[0] != "model":
                    on_fallback += 1
    replay_s = time.perf_counter() - t0
    values = series.to_numpy()
    actual = np.stack([values[i + 1 : i + 1 + H] for i in origins])
    naive = np.repeat(values[list(origins)][:, None], H, axis=1)
    ok = np.isfinite(pred["guard"]).all(axis=1) & np.isfinite(pred["model"]).all(axis=1)
    mae = {k: float(np.abs(p[ok] - actual[ok]).mean()) for k, p in {**pred, "naive": naive}.items()}
    return {
        "points": len(series),
        "origins": len(origins),
        "scored_origins": int(ok.sum()),
        "mae": mae,
        "fallback_share": on_fallback / max(int(ok.sum()), 1),
        "fit_seconds": round(fit_s, 1),
        "replay_seconds": round(replay_s, 1),
    }


def targets(r: dict[str, Any]) -> tuple[bool, bool | None]:
    """(guard <= naive, guard within 2 % of the model where the model beats naive, else None)."""
    m = r["mae"]
    close = at_most(m["guard"], 1.02 * m["model"]) if below(m["model"], m["naive"]) else None
    return at_most(m["guard"], m["naive"]), close


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| trace | origins | model / naive | guard / naive | guard / model | on fallback | guard <= naive | "
        "within 2 % of model |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        m = r["mae"]
        below, close = targets(r)
        lines.append(
            f"| {name} | {r['scored_origins']} | {m['model'] / m['naive']:.3f} | {m['guard'] / m['naive']:.3f} | "
            f"{m['guard'] / m['model']:.3f} | {r['fallback_share']:.0%} | {'yes' if below else 'NO'} | "
            f"{'-' if close is None else 'yes' if close else 'NO'} |"
        )
    return "\n".join(lines)


def arguments(name: str, doc: str) -> argparse.ArgumentParser:
    """The options every trace replay takes: --data, --traces, --json, --fast and --origins."""
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=doc.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="the traces (default: shared/data beside the clone)")
    p.add_argument("--traces", nargs="*", choices=TRACES, default=list(TRACES))
    p.add_argument("--json", type=Path, default=Path(f"{name}.json"))
    p.add_argument("--fast", action="store_true", help="tiny network and few epochs (a smoke test)")
    p.add_argument("--origins", type=int, help="replay only the first N origins of each trace (default: all)")
    return p


def data_dir(name: str, args: argparse.Namespace) -> Path | None:
    """The folder holding every trace asked for; None, after saying which are missing, where one is."""
    data: Path = args.data or default_data_dir()
    missing = [n for n in args.traces if not (data / f"{n}.csv").is_file()]
    if missing:
        print(f"{name}: traces missing in {data}: {', '.join(missing)}; pass --data DIR", file=sys.stderr)
        return None
    configure_logging("json", "error")  # the cycles' log lines would drown the table
    return data


def main(argv: list[str] | None = None) -> int:
    p = arguments("guard_replay", __doc__)
    p.add_argument(
        "--guard", default="{}", help="guard settings, e.g. '{\"margin\": 0.2}' (default: the target default)"
    )
    args = p.parse_args(argv)
    data = data_dir("guard_replay", args)
    if data is None:
        return 2
    results = {}
    for name in args.traces:
        results[name] = replay(name, data, json.loads(args.guard), args.fast, args.origins)
        print(f"{name}: done ({results[name]['fit_seconds']} s fit, {results[name]['replay_seconds']} s replay)",
              file=sys.stderr)  # fmt: skip
    print(table(results))
    met = [targets(r) for r in results.values()]
    below = sum(b for b, _ in met)
    close = [c for _, c in met if c is not None]
    print(f"\nguard <= naive on {below} of {len(met)} traces; within 2 % of the model on {sum(close)} of the "
          f"{len(close)} where the model beats naive")  # fmt: skip
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
