"""Daemon benchmark: forecast cycles against a real local Prometheus, and the resident memory of the daemon.

    .venv/bin/python -m benchmarks.daemon_bench [--series 1 100 1000] [--rss-series 1 1000] [--rss-seconds 60]

Needs Debian's prometheus and promtool (scripts/bootstrap --prometheus installs them). Prints figures;
asserts nothing. Cycles, a full-span query, windowing, inference and publishing (rendering /metrics) are timed apart, in
process: the first cycle reads the full span, the later ones only the steps since (daemon/cycle/recent.py). The
memory figures come from real `promcast run` processes (``python -m promcast run``) against the same
Prometheus, forecasting every 2 s and scraped every 2 s, read from /proc/<pid>/status.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from promcast.daemon.app import Daemon
from promcast.daemon.cycle.windows import build_windows
from promcast.daemon.logs import configure_logging
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import PrometheusSettings, Settings, TargetSettings
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.forecaster import DEFAULT_WINDOW, Forecaster
from promcast.forecaster.synthetic import bursty
from tests.support.localprom import (
    PrometheusServer,
    backfill,
    ensure_prometheus_installed,
    free_port,
    write_openmetrics,
)

# The backfilled history ends a minute before the run and never grows: its series lag a step more each minute.
FROZEN: dict[str, Any] = {"max_lag": 6}


def _median_ms(samples: list[float]) -> float:
    return float(np.median(samples) * 1e3)


def _backfill(tmp: Path, series: int, hours: int = 8) -> None:
    """``series`` series of ``hours`` hours at 1 min, ending a minute ago, into a TSDB at tmp/tsdb."""
    end = pd.Timestamp.now(tz="UTC").floor("1min") - pd.Timedelta(minutes=1)
    base = bursty(hours * 60, "1min", seed=1, end=end)
    rng = np.random.default_rng(0)
    data = [
        ("bench_load", {"pod": f"p{i:04d}"}, base.index, base.to_numpy() * rng.uniform(0.5, 2.0)) for i in range(series)
    ]
    write_openmetrics(tmp / "h.om", data)
    backfill(tmp / "h.om", tmp / "tsdb")


def prometheus_cycle(tmp: Path, series: int, cycles: int, model: Forecaster) -> dict[str, float]:
    """Serve ``series`` backfilled series from Prometheus and time full cycles of an in-process daemon."""
    _backfill(tmp, series)
    target = TargetSettings(name="bench", query="bench_load", step_seconds=60, history=timedelta(days=1), **FROZEN)
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp / "models")
    ModelStore(settings.model_dir, "bench").publish(model)
    with PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb") as prom:
        source = PrometheusSource(PrometheusSettings(url=prom.url, timeout_seconds=30))
        daemon = Daemon(settings, source, [target])
        job = daemon.jobs["bench"]
        query, window, infer, render, total, first = [], [], [], [], [], 0.0
        for i in range(cycles + 1):
            t0 = time.perf_counter()
            result = job()
            elapsed = time.perf_counter() - t0
            assert result.ok, result.error
            assert result.end is not None, result.error
            assert len(result.keys) == series, result.error
            if i == 0:  # reads the full span; the later cycles read only the steps since (daemon/cycle/recent.py)
                first = elapsed
                continue
            total.append(elapsed)
            t0 = time.perf_counter()
            span = job.reader.recent.span  # the span a full read asks
            data_now = source.fetch(target, result.end - span, result.end)
            query.append(time.perf_counter() - t0)
            served = daemon.holders["bench"].get()  # what the daemon serves: NumPy for the default model
            assert served is not None
            t0 = time.perf_counter()
            grid, points = job.reader.grid, target.input_length  # the gated model reads more than its window
            built = build_windows(data_now, result.end, target.step, points, target.max_gap, grid, target.max_lag)
            windows = built.values
            window.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            served.forecaster.predict(windows)
            infer.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            daemon.metrics.exposition()
            render.append(time.perf_counter() - t0)
    return {
        "first_ms": first * 1e3,
        "cycle_ms": _median_ms(total),
        "query_ms": _median_ms(query),
        "windows_ms": _median_ms(window),
        "inference_ms": _median_ms(infer),
        "render_ms": _median_ms(render),
    }


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


@contextmanager
def daemon_process(
    tmp: Path, prom_url: str, target: dict[str, Any], env: dict[str, str] | None = None, log_level: str = "warning"
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real `promcast run` (``python -m promcast run``) on one target against ``prom_url``, with its model store
    in tmp/models (and ``env`` for its environment); yields the process and its /metrics URL, and stops it on
    exit."""
    port = free_port()
    config = {
        "prometheus": {"url": prom_url, "timeout_seconds": 60},
        "targets": [target],
        "listen": f"127.0.0.1:{port}",
        "model_dir": str(tmp / "models"),
        "log_format": "json",
        "log_level": log_level,
    }
    (tmp / "promcast.json.yaml").write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "promcast", "run", "--config", str(tmp / "promcast.json.yaml")]
    with open(tmp / "daemon.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        yield proc, f"http://127.0.0.1:{port}/metrics"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_for_forecasts(tmp: Path, proc: subprocess.Popen[bytes], url: str, series: int, limit: float) -> float:
    """Seconds until /metrics holds forecasts for ``series`` series; raises with the daemon's log if it never does."""
    t0 = time.monotonic()
    while not _forecasts(url, series):
        if proc.poll() is not None or time.monotonic() - t0 > limit:
            log = (tmp / "daemon.log").read_text()[-2000:]
            raise RuntimeError(f"the daemon did not publish {series} series (exit code {proc.poll()}): {log}")
        time.sleep(0.5)
    return time.monotonic() - t0


def process_memory(tmp: Path, series: int, seconds: float, model: Forecaster) -> dict[str, float]:
    """Run `promcast run` against Prometheus serving ``series`` series, forecasting and scraped every 2 s.

    The model is published beforehand (the daemon never trains in process anyway). RSS is read every 2 s;
    the steady figure is the median over the second half of the run."""
    _backfill(tmp, series)
    ModelStore(tmp / "models", "bench").publish(model)
    target = {"name": "bench", "query": "bench_load", "step_seconds": 60, "interval_seconds": 2, **FROZEN}
    rss: list[float] = []
    scrape: list[float] = []
    with (
        PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb") as prom,
        daemon_process(tmp, prom.url, target) as (
            proc,
            url,
        ),
    ):
        wait_for_forecasts(tmp, proc, url, series, 120)
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=30) as resp:
                resp.read()
            scrape.append(time.perf_counter() - t0)
            rss.append(_vm(proc.pid, "VmRSS") / 1024)
            time.sleep(2.0)
        threads = _vm(proc.pid, "Threads")
    steady = rss[len(rss) // 2 :]
    return {
        "rss_first_mb": rss[0],
        "rss_steady_mb": float(np.median(steady)),
        "rss_max_mb": max(rss),
        "scrape_ms": _median_ms(scrape),
        "threads": float(threads),
    }


def _forecasts(url: str, series: int) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            text = resp.read().decode()
    except OSError:
        return False
    return text.count("promcast_forecast{") >= 12 * series


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.daemon_bench", description=__doc__)
    p.add_argument("--series", type=int, nargs="*", default=[1, 100, 1000])
    p.add_argument("--cycles", type=int, default=5, help="cycles per Prometheus measurement")
    p.add_argument("--rss-series", type=int, nargs="*", default=[1, 1000], help="series per daemon process")
    p.add_argument("--rss-seconds", type=float, default=60.0, help="how long each daemon process is watched")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of torch and BLAS (the daemon's default is 1)")
    args = p.parse_args(argv)
    ensure_prometheus_installed()  # PrometheusNotInstalled names what to install
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    configure_logging("console", "warning")
    model = Forecaster(window=DEFAULT_WINDOW).fit(bursty(4000, "1min", seed=2))
    print(
        f"{os.cpu_count()} CPUs; model: default ({DEFAULT_WINDOW}-step window); "
        f"first cycle, then medians over {args.cycles} more\n"
    )
    cycle_cols = {
        "first cycle ms": ("first_ms", 0),
        "later cycle ms": ("cycle_ms", 0),
        "full-span query ms": ("query_ms", 0),
    }
    cycle_cols["windows ms"] = ("windows_ms", 1)
    cycle_cols["inference ms"] = ("inference_ms", 1)
    cycle_cols["render /metrics ms"] = ("render_ms", 1)
    _table(args.series, cycle_cols, lambda n, tmp: prometheus_cycle(tmp, n, args.cycles, model))
    if args.rss_series:
        print(f"\n`promcast run` processes, forecasting and scraped every 2 s for {args.rss_seconds:.0f} s:\n")
        rss_cols = {"RSS at start MB": ("rss_first_mb", 0), "steady RSS MB (median, 2nd half)": ("rss_steady_mb", 0)}
        rss_cols.update({"max RSS MB": ("rss_max_mb", 0), "scrape ms": ("scrape_ms", 0), "threads": ("threads", 0)})
        _table(args.rss_series, rss_cols, lambda n, tmp: process_memory(tmp, n, args.rss_seconds, model))
    return 0


def _table(
    series: list[int], columns: dict[str, tuple[str, int]], measure: Callable[[int, Path], dict[str, float]]
) -> None:
    """One markdown row per series count: ``columns`` maps a heading to (result field, decimals)."""
    print("| series | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for n in series:
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(n, Path(tmp))
        print(f"| {n} | " + " | ".join(f"{r[field]:.{places}f}" for field, places in columns.values()) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
