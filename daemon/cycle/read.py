"""The cycle's read step: the new samples of every series, and their input windows on the target's step grid."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from promcast.daemon.cycle.merges import report_merges
from promcast.daemon.cycle.recent import RecentData
from promcast.daemon.cycle.windows import Windows, build_windows
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import get_logger
from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources import Source
from promcast.daemon.sources.samples import Samples
from promcast.daemon.types import QueryRejected, SeriesKey, SourceUnavailable

__all__ = ["NoRead", "Read", "Reader"]

log = get_logger("promcast.job")

Select = Callable[[Mapping[SeriesKey, Any]], dict[SeriesKey, Any]]  # this replica's series


@dataclass(frozen=True)
class Read:
    """The read step's result: every series' recent samples and the windows built from them."""

    data: dict[SeriesKey, Samples]
    windows: Windows


@dataclass(frozen=True)
class NoRead:
    """Why a read gave nothing to forecast: ``state`` is the target's state (``http.families.TARGET_STATES``)."""

    state: str
    why: str


class Reader:
    """Reads one target's new samples each cycle and builds its windows; counts what it skips or loses."""

    def __init__(self, target: TargetSettings, source: Source, metrics: Metrics, select: Select) -> None:
        self.target, self.source, self.metrics = target, source, metrics
        self.grid = target.input_length + 2 * target.max_gap + 3  # the span's points: an input and its lag and gaps
        span = target.step * (self.grid - 1)
        delay = _read_delay(source, target)
        self.max_lag = target.max_lag + math.ceil(delay / target.step)  # a source that reads behind now lags more
        self.recent = RecentData(source, target, span, select, delay=delay)  # reads only what is new each cycle
        self._previous: set[SeriesKey] = set()

    def read(self, end: datetime) -> Read | NoRead:
        """New samples and the windows ending at ``end``, or why the cycle cannot go on."""
        name, t = self.target.name, self.target
        try:
            data = self.recent.fetch(end)
            report_merges(self.source, name, self.metrics)  # series summed by drop_labels: gauge, a log per change
        except SourceUnavailable as exc:
            self.metrics.error(name, "query")
            log.warning("query_failed", target=name, error=str(exc))
            return NoRead("query_rejected" if isinstance(exc, QueryRejected) else "query_failed", str(exc))
        self.metrics.shard_series.labels(name).set(len(data))
        win = build_windows(data, end, t.step, t.input_length, t.max_gap, self.grid, self.max_lag)
        for key, reason in win.skipped:
            self.metrics.error(name, "input")
            log.warning("series_skipped", target=name, series=dict(key), reason=reason)
        self._count_vanished(set(win.keys), set(win.stopped) | (self._previous - set(data)))
        if not win.keys:
            self.metrics.publish(name, None)
            why = _no_usable(len(data), win, self.max_lag)
            log.warning("no_usable_series", target=name, returned=len(data), why=why)
            return NoRead("no_data", f"no usable series: {why}")
        return Read(data, win)

    def _count_vanished(self, published: set[SeriesKey], stopped: set[SeriesKey]) -> None:
        """A series forecast last cycle that has now stopped (no sample in the last max_lag steps) counts once."""
        gone = self._previous & stopped
        if gone:
            self.metrics.error(self.target.name, "vanished", len(gone))
            log.warning("series_vanished", target=self.target.name, count=len(gone), series=[dict(k) for k in gone])
        self._previous = published


def _read_delay(source: Source, target: TargetSettings) -> timedelta:
    """How far behind now ``source`` ends its reads (VictoriaMetrics' latency offset); most sources: none."""
    delay = getattr(source, "read_delay", None)
    return delay(target) if delay is not None else timedelta(0)


def _no_usable(returned: int, win: Windows, max_lag: int) -> str:
    """Why no series of a read can be forecast, in a line for /readyz and the log."""
    if not returned:
        return "the query matched no series with recent samples"
    if win.stopped and not win.skipped:
        return f"{len(win.stopped)} series returned, none with a sample in the last max_lag ({max_lag}) steps"
    first = win.skipped[0][1] if win.skipped else "stopped"
    return f"{returned} series returned, none usable (for example: {first})"
