"""Soak benchmark, run by hand: 10,000 accelerated demo cycles in process; RSS, threads and open files.

    python -m benchmarks.soak [--cycles 10000] [--series 10] [--warmup 500]

The Daemon runs on the DemoSource behind a clock that advances one step per cycle, and its job is called
directly (no scheduler); /metrics is rendered every 10 cycles as a scrape would. The baseline is taken after
``--warmup`` cycles, once the rolling quality window has filled, so that growth means a leak, not a cache.
The bar: RSS growth under 5 %, no growth in threads or open files.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from promcast.daemon.app import Daemon
from promcast.daemon.logs import configure_logging
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.daemon.types import SeriesKey


class SteppedDemo:
    """The demo workload on a clock that moves one step each time ``tick`` is called."""

    def __init__(self, inner: DemoSource, step: timedelta) -> None:
        self.inner, self.step = inner, step
        self.t = inner.now()

    def tick(self) -> None:
        self.t += self.step

    def now(self) -> datetime:
        return self.t

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        return self.inner.fetch(target, start, end)


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _state() -> tuple[int, int, int]:
    """(RSS KiB, OS threads, open file descriptors)."""
    return _rss_kib(), len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=10_000)
    p.add_argument("--series", type=int, default=10)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--log-level", default="warning", help="the daemon's log level (info prints a line a cycle)")
    args = p.parse_args(argv)
    configure_logging("json", args.log_level)

    target = TargetSettings(
        name="demo", query=DEMO_QUERY, step_seconds=60, window=24, history=timedelta(days=1), epochs=2,
        model="mlp", hparams={"hidden": 16, "members": 1},
    )  # fmt: skip
    model_dir = Path(tempfile.mkdtemp(prefix="promcast-soak-"))
    settings = Settings(listen="127.0.0.1:0", model_dir=model_dir)
    source = SteppedDemo(DemoSource(DemoSettings(series=args.series, workload="bursty"), target.step), target.step)
    daemon = Daemon(settings, source, [target])
    job = daemon.jobs["demo"]

    def run(n: int) -> int:
        failed = 0
        for i in range(n):
            source.tick()
            failed += not job().ok
            if i % 10 == 0:
                daemon.metrics.exposition()
        return failed

    failed = run(args.warmup)
    rss0, threads0, fds0 = _state()
    print(f"after {args.warmup} warm-up cycles: RSS {rss0 / 1024:.1f} MiB, threads {threads0}, open files {fds0}")
    t0, chunk = time.perf_counter(), max(1, args.cycles // 10)
    done = 0
    while done < args.cycles:
        n = min(chunk, args.cycles - done)
        failed += run(n)
        done += n
        rss, threads, fds = _state()
        print(f"  {done:6d} cycles: RSS {rss / 1024:.1f} MiB ({100 * (rss - rss0) / rss0:+.2f} %), "
              f"threads {threads}, open files {fds}")  # fmt: skip
    secs = time.perf_counter() - t0
    rss1, threads1, fds1 = _state()
    growth = 100 * (rss1 - rss0) / rss0
    print(
        f"{args.cycles} cycles x {args.series} series in {secs:.1f}s ({1000 * secs / args.cycles:.2f} ms/cycle), "
        f"{failed} failed\nRSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB ({growth:+.2f} %); "
        f"threads {threads0} -> {threads1} (python: {threading.active_count()}); open files {fds0} -> {fds1}"
    )
    ok = growth < 5.0 and threads1 <= threads0 and fds1 <= fds0 and failed == 0
    print("PASS" if ok else "FAIL", "(bar: RSS growth < 5 %, no thread or file growth, no failed cycle)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
