"""One series' raw samples as two arrays: what the cycle keeps between reads and windows, without pandas per series.

A pandas Series costs tens of microseconds to build, slice or append; a cycle over 1,000 series did each several
times. The cycle converts each series the source answers once, then works on these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Samples", "as_samples"]

_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}  # per unit of a DatetimeIndex's integers


@dataclass(frozen=True)
class Samples:
    times: np.ndarray  # int64 ns since the epoch, increasing
    values: np.ndarray  # float64, as the source answered them

    def __len__(self) -> int:
        return len(self.times)

    def to_series(self) -> pd.Series:
        return pd.Series(self.values, index=pd.to_datetime(self.times, unit="ns", utc=True))


def as_samples(series: pd.Series | Samples) -> Samples:
    """The arrays of a Series on a DatetimeIndex (or the Samples themselves)."""
    if isinstance(series, Samples):
        return series
    index = series.index
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    times = index.asi8 * _NS[index.unit]  # a few microseconds, where building an index costs tens
    return Samples(times, series.to_numpy(dtype=np.float64))
