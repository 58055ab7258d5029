"""Core benchmark: per model, predict_next_12 latency, a 1,000-series batch, and fit time on 20,000 points.

    python -m promcast.forecaster.bench [--models mlp gru ...] [--points 20000] [--repeats 300]

Prints a markdown table; figures, never asserts. Models with a NumPy forward (forecaster.numpy_runtime) get a
second row: the same fitted model, saved and loaded as the daemon serves it, without torch. Targets for
the default model on 2 CPU cores: p50 <= 1 ms, 1,000-series batch <= 50 ms, fit <= 60 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .catalog import CATALOG
from .forecaster import DEFAULT_MODEL, DEFAULT_WINDOW, Forecaster
from .models import MODELS
from .numpy_runtime import ArrayForecaster
from .predictor import Predictor
from .synthetic import bursty

__all__ = ["bench_model", "main"]


def _timings(call: Callable[[], object], repeats: int) -> np.ndarray:
    for _ in range(5):  # warm-up: first calls allocate
        call()
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        call()
        out[i] = time.perf_counter() - t0
    return out


def _latency(f: Predictor, values: np.ndarray, repeats: int) -> dict[str, float]:
    window = f.input_length  # the model's window, and the gate's recent past where it has one
    recent = values[-window:].copy()
    single = _timings(lambda: f.predict_next_12(recent), repeats) * 1e3
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(values) - window, 1000)
    batch = np.stack([values[s : s + window] for s in starts])
    many = _timings(lambda: f.predict(batch), max(10, repeats // 10)) * 1e3
    return {
        "p50_ms": float(np.percentile(single, 50)),
        "p99_ms": float(np.percentile(single, 99)),
        "batch1000_ms": float(np.median(many)),
    }


def bench_model(name: str, points: int, window: int, repeats: int) -> dict[str, dict[str, float]]:
    """Rows keyed by runtime: "torch" (with fit time and validation score) and, if it has one, "numpy"."""
    hparams: dict[str, Any] = {"period": 288} if name == "seasonal_naive" else {}
    series = bursty(points, "1min", seed=0)
    t0 = time.perf_counter()
    f = Forecaster(name, window=window, **hparams).fit(series)
    fit_s = time.perf_counter() - t0
    values = series.to_numpy()
    val = f.meta["validation"]
    rows = {
        "torch": {
            "fit_s": fit_s,
            "epochs": float(f.meta["training"]["epochs_run"]),
            **_latency(f, values, repeats),
            "val_mae_vs_naive": float(val.get("mae", np.nan) / val.get("naive_mae", np.nan)),
        }
    }
    if CATALOG[name].numpy is not None:
        with tempfile.TemporaryDirectory() as tmp:
            served = ArrayForecaster.load(f.save(f"{tmp}/model"))
        rows["numpy"] = {**_latency(served, values, repeats), "val_mae_vs_naive": np.nan}
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m promcast.forecaster.bench", description=__doc__)
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=[DEFAULT_MODEL, "ar", "naive", "gru"])
    p.add_argument("--points", type=int, default=20_000)
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW)
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the daemon's default is 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # NumPy's BLAS, for the rows that run without torch
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, numpy {np.__version__}, "
        f"{torch.get_num_threads()} threads; series: bursty, {args.points} points at 1 min; window {args.window}\n"
    )
    heads = ["model", "runtime", "fit s (epochs)", "predict_next_12 p50 ms", "p99 ms", "1,000-series batch ms"]
    print("| " + " | ".join([*heads, "val MAE / naive"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        mark = " (default)" if name == DEFAULT_MODEL else ""
        for runtime, r in bench_model(name, args.points, args.window, args.repeats).items():
            fit = f"{r['fit_s']:.1f} ({r['epochs']:.0f})" if "fit_s" in r else "same model"
            score = f"{r['val_mae_vs_naive']:.3f}" if np.isfinite(r["val_mae_vs_naive"]) else "same"
            print(
                f"| {name}{mark} | {runtime} | {fit} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} "
                f"| {r['batch1000_ms']:.1f} | {score} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
