"""A source over one precomputed series whose clock the test moves: for the tests that drive ``ForecastJob``
step by step (the guard, the replicas, the bursts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from promcast.daemon.settings import TargetSettings
from promcast.daemon.types import SeriesKey

STEP = timedelta(minutes=1)
START = datetime(2026, 3, 2, tzinfo=UTC)
KEY: SeriesKey = (("instance", "a"),)


class Scripted:
    """One series, ``values`` one a minute from START; ``at`` is the source's now."""

    def __init__(self, values: np.ndarray) -> None:
        self.index = pd.date_range(START, periods=len(values), freq=STEP, tz="UTC")
        self.values, self.at = values, START

    def now(self) -> datetime:
        return self.at

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        keep = (self.index >= pd.Timestamp(start)) & (self.index <= pd.Timestamp(end))
        return {KEY: pd.Series(self.values[keep], index=self.index[keep])}
