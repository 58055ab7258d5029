"""First start of a target without a model: the daemon's peak memory until it publishes every series.

    .venv/bin/python -m benchmarks.first_start [SERIES]          # default 1,000 series

Backfills SERIES series of 8 hours at 1 minute into a local Prometheus (as daemon_bench does), starts a real
`promcast run` with an empty model store and a history of 8 hours, waits until /metrics holds forecasts for
every series, then reads the daemon's VmHWM (its peak since it started; the training child's is its own).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchmarks.daemon_bench import FROZEN, _backfill, _vm, daemon_process, wait_for_forecasts
from tests.support.localprom import PrometheusServer, ensure_prometheus_installed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 1000
    ensure_prometheus_installed()  # PrometheusNotInstalled names what to install
    target = {"name": "bench", "query": "bench_load", "step_seconds": 60, "history": "PT8H", "epochs": 5, **FROZEN}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _backfill(tmp, n)
        with (
            PrometheusServer(tmp / "prom", tsdb_dir=tmp / "tsdb") as prom,
            daemon_process(tmp, prom.url, target) as (
                proc,
                url,
            ),
        ):
            seconds = wait_for_forecasts(tmp, proc, url, n, 600)
            hwm, rss = _vm(proc.pid, "VmHWM"), _vm(proc.pid, "VmRSS")  # VmHWM: the peak since the start
        print(
            f"{n} series: first forecasts after {seconds:.1f} s; "
            f"daemon VmHWM {hwm / 1024:.0f} MiB, VmRSS {rss / 1024:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
