"""A source that replays a recorded series on a clock the caller moves: the daemon's own cycle, driven step by
step over history (the guard replay, ``benchmarks/guard_replay.py``), with no Prometheus and no waiting."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from .settings import TargetSettings
from .types import SeriesKey

__all__ = ["ReplaySource"]


class ReplaySource:
    """Serves ``series`` up to ``at``, the replay's "now"; ``at`` starts at the first point."""

    def __init__(self, series: pd.Series, key: SeriesKey = (("series", "replay"),)) -> None:
        if not isinstance(series.index, pd.DatetimeIndex) or series.index.tz is None:
            raise ValueError("the replayed series needs a timezone-aware DatetimeIndex")
        self.series, self.key = series.sort_index(), key
        self.at: datetime = self.series.index[0].to_pydatetime()

    def now(self) -> datetime:
        return self.at

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        end = min(end, self.at)  # nothing after "now" exists yet
        return {self.key: self.series.loc[pd.Timestamp(start) : pd.Timestamp(end)]}
