"""A source that replays a recorded series: on a clock the caller moves (the daemon's own cycle driven step by
step over history, as ``benchmarks/guard_replay.py`` does, with no waiting), or, with ``speed``, on a clock that
runs from its start at ``speed`` times real time (the ``csv`` source of ``daemon.sources``)."""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd

from promcast.daemon.settings import TargetSettings
from promcast.daemon.types import SeriesKey

__all__ = ["ReplaySource"]


class ReplaySource:
    """Serves ``series`` up to ``now()``: ``at``, which starts at the point ``start`` (a share of the series) and
    which the caller moves, or with ``speed`` ``at`` plus the real time since construction times ``speed``."""

    def __init__(
        self,
        series: pd.Series,
        key: SeriesKey = (("series", "replay"),),
        start: float = 0.0,
        speed: float | None = None,
    ) -> None:
        if not isinstance(series.index, pd.DatetimeIndex) or series.index.tz is None:
            raise ValueError("the replayed series needs a timezone-aware DatetimeIndex")
        if series.empty:
            raise ValueError("the replayed series is empty")
        self.series, self.key, self.speed = series.sort_index(), key, speed
        self.at: datetime = self.series.index[int(start * (len(series) - 1))].to_pydatetime()
        self._real_start = time.monotonic()

    def now(self) -> datetime:
        if self.speed is None:
            return self.at
        return self.at + pd.Timedelta(seconds=(time.monotonic() - self._real_start) * self.speed).to_pytimedelta()

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        end = min(end, self.now())  # nothing after "now" exists yet
        return {self.key: self.series.loc[pd.Timestamp(start) : pd.Timestamp(end)]}
