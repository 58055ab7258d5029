"""Where samples come from: the ``Source`` protocol and the one table of sources, read by ``make_source``.

Every command that reads samples builds its source here, from the settings alone: the daemon (``promcast run``
and ``promcast demo``), the retrain job (``promcast train``, also the daemon's child) and the replays. A new
source is one row of ``SOURCES``, its builder, its name in ``Settings.source`` and any settings of its own; a test
keeps the names equal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import pandas as pd

from promcast.daemon.settings import Settings, TargetSettings
from promcast.daemon.types import SeriesKey

__all__ = ["SOURCES", "Source", "make_source"]


class Source(Protocol):
    """Samples and a clock. ``fetch`` raises ``SourceUnavailable`` when it cannot answer."""

    def now(self) -> datetime: ...

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]: ...


def _prometheus(settings: Settings) -> Source:
    from promcast.daemon.sources.prometheus import PrometheusSource

    return PrometheusSource(settings.prometheus)


def _victoriametrics(settings: Settings) -> Source:
    from promcast.daemon.sources.victoriametrics import VictoriaMetricsSource

    return VictoriaMetricsSource(settings.prometheus, settings.victoriametrics)


def _demo(settings: Settings) -> Source:
    from promcast.daemon.sources.demo import DemoSource

    return DemoSource(settings.demo, timedelta(seconds=settings.demo.step_seconds))


def _csv(settings: Settings) -> Source:
    from promcast.daemon.sources.replay import ReplaySource
    from promcast.forecaster.data import load_csv

    c = settings.csv
    assert c.path is not None  # Settings refuses source csv without a path
    series = load_csv(c.path, c.value_column).groupby(level=0, sort=True).mean()
    index = pd.DatetimeIndex(series.index)
    series.index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return ReplaySource(series, (("series", c.path.stem),), start=c.start, speed=c.speed)


SOURCES: dict[str, Callable[[Settings], Source]] = {
    "prometheus": _prometheus,  # a Prometheus HTTP API: settings.prometheus
    "victoriametrics": _victoriametrics,  # VictoriaMetrics' Prometheus API: settings.prometheus and .victoriametrics
    "demo": _demo,  # the embedded synthetic workload, on a simulated clock: settings.demo
    "csv": _csv,  # one recorded series replayed from a share of the file on: settings.csv
}


def make_source(settings: Settings) -> Source:
    """The source ``settings.source`` names, built from the settings."""
    return SOURCES[settings.source](settings)
