"""The recent span of every series of one target, kept between cycles so that a cycle reads only what is new.

A full read of 1,000 series parses about 300,000 samples each cycle, nearly all of them read the cycle before.
``RecentData`` reads the whole span once, then each cycle only the steps since the last read plus ``overlap`` steps
before them, which it reads again in case samples arrived late. The answer is the one a full read would give as long
as samples older than the overlap never change, with one rule applied to both reads: a series with no sample in the
last ``overlap`` (``max_gap + 2`` steps) is left out. The job could not forecast it anyway (its staleness check
skips a series older than ``max_gap`` steps), and leaving it out of every read, full or short, makes it vanish once
rather than each time a full read brings its old samples back.

- a series the short read returns for the first time has no older samples here, so the cycle reads the full
  span instead;
- the full span is read again after ``resync_cycles`` short reads, after a failed or skipped cycle left a gap
  longer than half the span, and whenever the end moves backwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources import Source
from promcast.daemon.sources.samples import Samples, as_samples
from promcast.daemon.types import SeriesKey

__all__ = ["RecentData"]

Select = Callable[[Mapping[SeriesKey, Any]], dict[SeriesKey, Any]]


class RecentData:
    def __init__(
        self,
        source: Source,
        target: TargetSettings,
        span: timedelta,
        select: Select = dict,
        resync_cycles: int = 60,
        delay: timedelta = timedelta(0),
    ) -> None:
        self.source, self.target, self.span, self.select = source, target, span, select
        self.overlap = target.step * (target.max_gap + 2) + delay  # delay: how far behind now the source reads
        self.resync_cycles = resync_cycles
        self._data: dict[SeriesKey, Samples] = {}
        self._end: datetime | None = None
        self._short_reads = 0
        self.last_read = "none"  # "full" or "short": what the last call did

    def fetch(self, end: datetime) -> dict[SeriesKey, Samples]:
        """Every series with a sample in the last ``overlap``, with its samples in [end - span, end], as a full
        read at ``end`` would return them (as arrays: the cycle works on arrays, not on pandas per series)."""
        start = end - self.span
        last = self._end
        if last is None or end < last or end - last > self.span / 2 or self._short_reads >= self.resync_cycles:
            return self._full(start, end)
        cut = last - self.overlap
        new = self.select(self._read(cut, end))
        if not set(new) <= set(self._data):
            return self._full(start, end)  # a new series: nothing older of it is kept here
        data: dict[SeriesKey, Samples] = {}
        lo, hi = pd.Timestamp(start).value, pd.Timestamp(cut).value
        for key, answer in new.items():
            got = as_samples(answer)
            at = int(np.searchsorted(got.times, hi))  # a source may answer more than was asked
            if at == len(got):
                continue  # nothing since cut: _keep would leave it out
            old = self._data[key]
            a, b = np.searchsorted(old.times, [lo, hi])  # [start, cut): sorted
            data[key] = Samples(
                np.concatenate([old.times[a:b], got.times[at:]]), np.concatenate([old.values[a:b], got.values[at:]])
            )
        self._short_reads += 1
        self.last_read = "short"
        return self._keep(data, end)

    def _full(self, start: datetime, end: datetime) -> dict[SeriesKey, Samples]:
        self._short_reads = 0
        self.last_read = "full"
        answer = self.select(self._read(start, end))
        return self._keep({k: as_samples(s) for k, s in answer.items() if len(s)}, end)

    def _read(self, start: datetime, end: datetime) -> Mapping[SeriesKey, Samples | pd.Series]:
        """The source's answer, as arrays where the source can give them (PrometheusSource.fetch_samples)."""
        fetch_samples = getattr(self.source, "fetch_samples", None)
        if fetch_samples is not None:
            return fetch_samples(self.target, start, end)
        return self.source.fetch(self.target, start, end)

    def _keep(self, data: dict[SeriesKey, Samples], end: datetime) -> dict[SeriesKey, Samples]:
        """Keep (and return) the series with a sample in the last ``overlap``: the one rule for both reads."""
        recent = pd.Timestamp(end - self.overlap).value
        self._data = {k: s for k, s in data.items() if s.times[-1] >= recent}
        self._end = end
        return self._data
