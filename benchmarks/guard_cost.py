"""What the live guard adds to a cycle: QualityTracker.observe for 1,000 series, with and without the guard.

    python -m benchmarks.guard_cost [--series 1000] [--cycles 60]

Each cycle records 1,000 forecasts of 12 steps and scores the pending ones against new actual values, as the
forecast job does; the median is over the cycles after the first 20 (12 forecasts pending each cycle by then).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from promcast.daemon.cycle.guard import Guard, fallback_forecasts
from promcast.daemon.cycle.quality import QualityTracker
from promcast.daemon.types import SeriesKey

H = 12
STEP = pd.Timedelta("60s")


def observe_ms(series: int, cycles: int, guarded: bool, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    keys: list[SeriesKey] = [(("instance", str(i)),) for i in range(series)]
    tracker = QualityTracker(STEP, H, (0.8,), 288, 0.005)
    guard = Guard(H) if guarded else None
    start, times = pd.Timestamp("2026-01-01", tz="UTC"), []
    for c in range(cycles):
        origin = start + c * STEP
        windows, values = rng.normal(size=(series, 300)), rng.normal(size=(series, H))
        fallbacks = fallback_forecasts(windows, H, None) if guarded else {}
        tracker.record(origin, keys, values, windows[:, -1], {0.8: (values - 1, values + 1)}, None, fallbacks)
        index = pd.date_range(origin - 10 * STEP, origin, freq=STEP)
        data = {k: pd.Series(rng.normal(size=len(index)), index=index) for k in keys}
        t0 = time.perf_counter()
        scored = tracker.observe(data)
        if guard is not None:  # what the cycle's score step does with the errors
            for key, errors in scored.errors.items():
                guard.update(key, errors)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[20:]) * 1e3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.guard_cost", description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--cycles", type=int, default=60)
    args = p.parse_args(argv)
    plain, guarded = (observe_ms(args.series, args.cycles, g) for g in (False, True))
    print(f"observe, {args.series} series, median ms: without the guard {plain:.1f}, with it {guarded:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
