"""VictoriaMetrics input, the ``victoriametrics`` source of ``daemon.sources``: the Prometheus HTTP client, with
VictoriaMetrics' read delay.

VictoriaMetrics serves the Prometheus query API and MetricsQL runs promcast's queries, the presence query's
``present_over_time`` included. One difference matters to the read: for a query step under
``-search.maxStepForPointsAdjustment`` (1m), it answers every point within ``-search.latencyOffset`` (30s) of now
with the value of the point before, and the presence query with 1. Read as samples, those repeats would be taken for
real values, so this source ends such reads where the repeats begin: a series then lags, and forecasts from its own
last real point.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from promcast.daemon.settings import PrometheusSettings, TargetSettings
from promcast.daemon.settings.sources import VictoriaMetricsSettings
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.daemon.sources.samples import Samples
from promcast.daemon.types import SeriesKey

__all__ = ["VictoriaMetricsSource"]


class VictoriaMetricsSource(PrometheusSource):
    """Reads one target's range of samples from VictoriaMetrics. Every failure becomes SourceUnavailable."""

    def __init__(self, settings: PrometheusSettings, vm: VictoriaMetricsSettings) -> None:
        super().__init__(settings)
        self.vm = vm

    SYNTAX_STATUSES = frozenset({400, 422})  # VictoriaMetrics answers a query it cannot parse with 422

    def read_delay(self, target: TargetSettings) -> timedelta:
        """How far behind now this source's reads of ``target`` end: its series lag by that much more."""
        if target.step_seconds >= self.vm.max_step_for_points_adjustment_seconds:
            return timedelta(0)
        return timedelta(seconds=self.vm.latency_offset_seconds + 1)  # + 1: the end is floored to a second

    def _readable_end(self, target: TargetSettings, end: datetime) -> datetime:
        """``end``, or the start of the span VictoriaMetrics answers with repeats where it is earlier."""
        if not self.read_delay(target):
            return end
        # Whole seconds: the client sends rounded times, and a rounded-up end would reach into the repeats.
        last = math.floor(self.now().timestamp() - self.vm.latency_offset_seconds)
        return min(end, datetime.fromtimestamp(last, tz=UTC))

    def fetch_samples(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, Samples]:
        return super().fetch_samples(target, start, self._readable_end(target, end))
