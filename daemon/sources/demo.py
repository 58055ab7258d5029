"""The embedded default source: a synthetic workload that stands in for Prometheus, optionally sped up."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from promcast.daemon.settings import DemoSettings, DriftSettings, TargetSettings
from promcast.daemon.types import SeriesKey
from promcast.forecaster import DEFAULT_HORIZON
from promcast.forecaster.synthetic import make_workload

__all__ = ["DEMO_QUERY", "DemoSource", "demo_target"]

DEMO_QUERY = "promcast_demo_workload"
_PERIOD = timedelta(days=14)  # the pattern repeats after two weeks of simulated time
# The "shift" workload: the diurnal load until SHIFT[0] after the start, about 2 % of it (a service drained) until
# SHIFT[1], then back at SHIFT_LEVEL times its old level. At --speed 60 the drain is a burst at once, the default
# model's gate forecasts as naive within two minutes, and the drift retrain starts a minute later (README).
SHIFT = (timedelta(minutes=30), timedelta(hours=8))
SHIFT_LEVEL = 1.5


FirstModel = Literal["pretrained", "train"]


def demo_target(
    step_seconds: float = 60.0,
    horizon: int = DEFAULT_HORIZON,
    first_model: FirstModel = "pretrained",
    workload: str = "diurnal",
) -> TargetSettings:
    """The demo's one target. The shift workload also retrains on drift (``drift_retrain``), so that both halves of
    the live safety net, the guard and the drift retrain, show at ``--speed 60``."""
    return TargetSettings(
        name="demo",
        query=DEMO_QUERY,
        step_seconds=step_seconds,
        horizon=horizon,
        history=timedelta(days=3),
        first_model=first_model,
        drift_retrain=DriftSettings(enabled=workload == "shift"),
    )


class DemoSource:
    """Deterministic synthetic series on a simulated clock running ``speed`` times faster than real time.

    One two-week pattern is generated once; series i reads it at its own offset and level, so any number of
    series costs the memory of one pattern.
    """

    def __init__(self, settings: DemoSettings, step: timedelta) -> None:
        self.settings, self.step = settings, step
        self._n = int(_PERIOD / step)
        kind = "diurnal" if settings.workload == "shift" else settings.workload
        self._pattern = make_workload(kind, self._n, step, settings.seed).to_numpy()
        rng = np.random.default_rng(settings.seed + 1)
        self._offsets = rng.integers(0, self._n, settings.series)
        self._levels = rng.uniform(0.5, 2.0, settings.series)
        self._levels[0], self._offsets[0] = 1.0, 0
        self._real_start = time.monotonic()
        self._sim_start = datetime.now(UTC)

    def now(self) -> datetime:
        return self._sim_start + (time.monotonic() - self._real_start) * self.settings.speed * timedelta(seconds=1)

    def _shift(self, times_ns: np.ndarray) -> np.ndarray:
        """The shift workload's level factor at each time: 1, then a drained 0.02, then SHIFT_LEVEL."""
        since = (times_ns - pd.Timestamp(self._sim_start).value) / 1e9
        drained, back = (t.total_seconds() for t in SHIFT)
        return np.where(since < drained, 1.0, np.where(since < back, 0.02, SHIFT_LEVEL))

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        step_ns = int(self.step.total_seconds() * 1e9)
        first = -(-int(start.timestamp() * 1e9) // step_ns)  # first grid index at or after start
        last = int(end.timestamp() * 1e9) // step_ns
        idx = np.arange(first, last + 1)
        index = pd.DatetimeIndex(pd.to_datetime(idx * step_ns, unit="ns", utc=True))
        out: dict[SeriesKey, pd.Series] = {}
        factor = self._shift(idx * step_ns) if self.settings.workload == "shift" else 1.0
        for i in range(self.settings.series):
            values = self._pattern[(idx + self._offsets[i]) % self._n] * self._levels[i] * factor
            out[(("series", f"s{i}"),)] = pd.Series(values, index=index)
        return out
