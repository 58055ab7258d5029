"""Outage soak, run by hand: the demo at --speed 60 through a scripted 20-minute outage of its source.

    .venv/bin/python -m benchmarks.outage_soak [--speed 60] [--outage-minutes 20] [--series 3]

The real Daemon (scheduler, cycles, metrics) runs on the demo workload behind a source that, once the first
forecast is out and ten simulated minutes have passed, answers nothing for ``--outage-minutes`` (Prometheus down)
and afterwards has no samples for that span (nothing was scraped while it was down). It prints when forecasts
were withdrawn, when the source came back, when the first forecast after it was published, and that cycle's
filled share of the input and bridged series. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from promcast.daemon.app import Daemon
from promcast.daemon.logs import configure_logging
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DemoSource, demo_target
from promcast.daemon.types import SeriesKey, SourceUnavailable


class OutageDemo(DemoSource):
    """The demo source with a scripted outage: down in [down_from, down_to), no samples for that span after."""

    down_from: datetime | None = None
    down_to: datetime | None = None

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        lo, hi, now = self.down_from, self.down_to, self.now()
        if lo is not None and hi is not None and lo <= now < hi:
            raise SourceUnavailable("scripted outage")
        data = super().fetch(target, start, end)
        if lo is None or hi is None:
            return data
        return {k: s[(s.index < pd.Timestamp(lo)) | (s.index >= pd.Timestamp(hi))] for k, s in data.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.outage_soak", description=__doc__)
    p.add_argument("--speed", type=float, default=60.0)
    p.add_argument("--outage-minutes", type=float, default=20.0)
    p.add_argument("--series", type=int, default=3)
    args = p.parse_args(argv)
    configure_logging("json", "warning")
    target = demo_target(60.0)
    source = OutageDemo(DemoSettings(series=args.series, speed=args.speed), target.step)
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=Path(tmp)), source, [target], speed=args.speed)
        daemon.start()
        try:
            return _watch(daemon, source, target, args.outage_minutes, args.speed)
        finally:
            daemon.shutdown()


def _watch(daemon: Daemon, source: OutageDemo, target: TargetSettings, minutes: float, speed: float) -> int:
    gauge = daemon.registry.get_sample_value
    t0 = time.monotonic()
    while daemon.metrics.snapshot()[0].get("demo") is None:
        time.sleep(0.1)
    print(f"first forecast after {time.monotonic() - t0:.0f} s (first training included)")
    source.down_from = source.now() + timedelta(minutes=10)
    source.down_to = source.down_from + timedelta(minutes=minutes)
    withdrawn = back = None
    deadline = time.monotonic() + (10 + minutes + 15) * 60 / speed
    last_stamp = None
    while time.monotonic() < deadline:
        fc = daemon.metrics.snapshot()[0].get("demo")
        now = source.now()
        if (fc is None or not fc.fresh(now.timestamp())) and withdrawn is None and now >= source.down_from:
            withdrawn = now  # no longer exported: older than ready_max_age_steps
        if fc is not None and fc.computed_at != last_stamp:
            last_stamp = fc.computed_at
            if now >= source.down_to and back is None:
                back = datetime.fromtimestamp(fc.computed_at, source.down_to.tzinfo)
                imputed = gauge("promcast_input_imputed_ratio", {"target": "demo"})
                bridged = gauge("promcast_input_gap_series", {"target": "demo"})
        time.sleep(0.02)
    errors = gauge("promcast_errors_total", {"target": "demo", "stage": "query"})
    print(f"outage (simulated): {source.down_from:%H:%M:%S} to {source.down_to:%H:%M:%S}, {minutes:g} minutes")
    print(f"forecasts withdrawn at: {withdrawn:%H:%M:%S}" if withdrawn else "forecasts never withdrawn")
    if back is None:
        print("no forecast after the outage")
        return 1
    lag = (back - source.down_to).total_seconds()
    print(f"first forecast after recovery: {back:%H:%M:%S}, {lag:.1f} s of simulated time after it")
    print(f"(one cycle = {target.interval:g} s simulated); query errors during the outage: {errors:g}")
    print(f"that cycle: imputed share {imputed:.4f} of {args_points(daemon)} input points, bridged series {bridged:g}")
    return 0


def args_points(daemon: Daemon) -> int:
    fc = daemon.metrics.snapshot()[0]["demo"]
    return len(fc.keys) * daemon.targets[0].window


if __name__ == "__main__":
    raise SystemExit(main())
