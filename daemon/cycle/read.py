"""The cycle's read step: the new samples of every series, and their input windows on the target's step grid."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from promcast.daemon.cycle.merges import report_merges
from promcast.daemon.cycle.recent import RecentData
from promcast.daemon.cycle.windows import Windows, build_windows
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import get_logger
from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources import Source
from promcast.daemon.sources.samples import Samples
from promcast.daemon.types import SeriesKey, SourceUnavailable

__all__ = ["Read", "Reader"]

log = get_logger("promcast.job")

Select = Callable[[Mapping[SeriesKey, Any]], dict[SeriesKey, Any]]  # this replica's series


@dataclass(frozen=True)
class Read:
    """The read step's result: every series' recent samples and the windows built from them."""

    data: dict[SeriesKey, Samples]
    windows: Windows


class Reader:
    """Reads one target's new samples each cycle and builds its windows; counts what it skips or loses."""

    def __init__(self, target: TargetSettings, source: Source, metrics: Metrics, select: Select) -> None:
        self.target, self.source, self.metrics = target, source, metrics
        self.grid = target.input_length + 2 * target.max_gap + 3  # the span's points: an input and its lag and gaps
        span = target.step * (self.grid - 1)
        self.recent = RecentData(source, target, span, select)  # reads only what is new each cycle
        self._previous: set[SeriesKey] = set()

    def read(self, end: datetime) -> Read | str:
        """New samples and the windows ending at ``end``, or why the cycle cannot go on."""
        name, t = self.target.name, self.target
        try:
            data = self.recent.fetch(end)
            report_merges(self.source, name, self.metrics)  # series summed by drop_labels: gauge, a log per change
        except SourceUnavailable as exc:
            self.metrics.error(name, "query")
            log.warning("query_failed", target=name, error=str(exc))
            return str(exc)
        self.metrics.shard_series.labels(name).set(len(data))
        win = build_windows(data, end, t.step, t.input_length, t.max_gap, self.grid)
        for key, reason in win.skipped:
            self.metrics.error(name, "input")
            log.warning("series_skipped", target=name, series=dict(key), reason=reason)
        self._count_vanished(set(data))
        if not win.keys:
            self.metrics.publish(name, None)
            self.metrics.series.labels(name).set(0)
            log.warning("no_usable_series", target=name, returned=len(data))
            return "no usable series"
        return Read(data, win)

    def _count_vanished(self, present: set[SeriesKey]) -> None:
        gone = self._previous - present
        if gone:
            self.metrics.error(self.target.name, "vanished", len(gone))
            log.warning("series_vanished", target=self.target.name, count=len(gone), series=[dict(k) for k in gone])
        self._previous = present
