"""Daemon benchmark: one forecast cycle against a real local Prometheus, and memory over many demo cycles.

    .venv/bin/python -m benchmarks.daemon_bench [--series 1 100 1000] [--demo-cycles 1000]

Needs Debian's prometheus and promtool (scripts/bootstrap --prometheus installs them). Prints figures;
asserts nothing. Query, inference and publishing (rendering /metrics) are timed apart.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from prometheus_client import generate_latest

from daemon.app import Daemon
from daemon.demo import DEMO_QUERY, DemoSource
from daemon.logs import configure_logging
from daemon.settings import DemoSettings, PrometheusSettings, Settings, TargetSettings
from daemon.source import PrometheusSource
from daemon.store import ModelStore
from forecaster import DEFAULT_WINDOW, Forecaster
from forecaster.synthetic import bursty
from tests.support.prometheus_server import PrometheusServer, backfill, require_prometheus, write_openmetrics


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _rss_mb() -> float:
    return _status("VmRSS") / 1024


def _median_ms(samples: list[float]) -> float:
    return float(np.median(samples) * 1e3)


def prometheus_cycle(tmp: Path, series: int, cycles: int) -> dict[str, float]:
    """Backfill ``series`` series of 8 hours at 1 min, serve them from Prometheus, time full cycles."""
    end = pd.Timestamp.now(tz="UTC").floor("1min") - pd.Timedelta(minutes=1)
    base = bursty(8 * 60, "1min", seed=1, end=end)
    rng = np.random.default_rng(0)
    data = [
        ("bench_load", {"pod": f"p{i:04d}"}, base.index, base.to_numpy() * rng.uniform(0.5, 2.0)) for i in range(series)
    ]
    write_openmetrics(tmp / "h.om", data)
    backfill(tmp / "h.om", tmp / "tsdb")
    target = TargetSettings(name="bench", query="bench_load", step_seconds=60, history=timedelta(days=1))
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp / "models")
    model = Forecaster(window=DEFAULT_WINDOW).fit(bursty(4000, "1min", seed=2))
    ModelStore(settings.model_dir, "bench").publish(model)
    with PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb") as prom:
        source = PrometheusSource(PrometheusSettings(url=prom.url, timeout_seconds=30))
        daemon = Daemon(settings, source, [target])
        job = daemon.jobs["bench"]
        query, infer, render, total = [], [], [], []
        for _ in range(cycles):
            t0 = time.perf_counter()
            result = job()
            total.append(time.perf_counter() - t0)
            assert result.ok and result.end is not None and len(result.keys) == series, result.error
            t0 = time.perf_counter()
            data_now = source.fetch(target, result.end - target.step * (target.window + 12), result.end)
            query.append(time.perf_counter() - t0)
            windows = np.stack([s.to_numpy()[-target.window :] for s in data_now.values()])
            t0 = time.perf_counter()
            model.predict(windows)
            infer.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            generate_latest(daemon.registry)
            render.append(time.perf_counter() - t0)
    return {
        "cycle_ms": _median_ms(total),
        "query_ms": _median_ms(query),
        "inference_ms": _median_ms(infer),
        "render_ms": _median_ms(render),
    }


def demo_memory(tmp: Path, cycles: int, series: int) -> dict[str, float]:
    target = TargetSettings(name="demo", query=DEMO_QUERY, step_seconds=60, history=timedelta(days=3))
    source = DemoSource(DemoSettings(series=series, speed=60.0), target.step)
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp / "demo-models"), source, [target])
    job = daemon.jobs["demo"]
    job()  # first cycle trains the model
    for _ in range(50):  # warm-up
        job()
    rss0, threads0, fds0 = _rss_mb(), _status("Threads"), len(os.listdir("/proc/self/fd"))
    t0 = time.perf_counter()
    for _ in range(cycles):
        assert job().ok
        generate_latest(daemon.registry)
    secs = time.perf_counter() - t0
    return {
        "rss_start_mb": rss0,
        "rss_end_mb": _rss_mb(),
        "threads": float(threads0),
        "threads_end": float(_status("Threads")),
        "fds": float(fds0),
        "fds_end": float(len(os.listdir("/proc/self/fd"))),
        "cycle_ms": secs / cycles * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.daemon_bench", description=__doc__)
    p.add_argument("--series", type=int, nargs="+", default=[1, 100, 1000])
    p.add_argument("--cycles", type=int, default=5, help="cycles per Prometheus measurement")
    p.add_argument("--demo-cycles", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the daemon's default is 1)")
    args = p.parse_args(argv)
    require_prometheus(fail_in_ci=False)
    torch.set_num_threads(args.threads)
    configure_logging("console", "warning")
    print(f"{os.cpu_count()} CPUs; model: default ({DEFAULT_WINDOW}-step window); medians over {args.cycles} cycles\n")
    print("| series | full cycle ms | query ms | inference ms | render /metrics ms |")
    print("|---|---|---|---|---|")
    for n in args.series:
        with tempfile.TemporaryDirectory() as tmp:
            r = prometheus_cycle(Path(tmp), n, args.cycles)
        print(f"| {n} | {r['cycle_ms']:.0f} | {r['query_ms']:.0f} | {r['inference_ms']:.1f} | {r['render_ms']:.1f} |")
    if args.demo_cycles:
        with tempfile.TemporaryDirectory() as tmp:
            m = demo_memory(Path(tmp), args.demo_cycles, 1)
        print(
            f"\ndemo, {args.demo_cycles} cycles: RSS {m['rss_start_mb']:.0f} -> {m['rss_end_mb']:.0f} MB "
            f"({(m['rss_end_mb'] / m['rss_start_mb'] - 1) * 100:+.1f}%), threads {m['threads']:.0f} -> "
            f"{m['threads_end']:.0f}, open files {m['fds']:.0f} -> {m['fds_end']:.0f}, {m['cycle_ms']:.2f} ms a cycle"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
