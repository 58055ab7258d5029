"""The daemon's metrics, one per row of ``daemon.http.families.FAMILIES``, on a registry passed in from main().

Jobs compute and hand over immutable snapshots; a scrape only renders them, never queries or predicts.
Forecasts older than the staleness limit are no longer rendered, so a forecast is never served as fresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.openmetrics import exposition as openmetrics

from promcast.daemon.build import BuildInfo
from promcast.daemon.http.families import (
    FAMILIES,
    RETRAIN_REASONS,
    ROLES,
    STAGES,
    TARGET_STATES,
    ModelInfo,
    TargetForecast,
)
from promcast.daemon.http.render import render_snapshot
from promcast.daemon.types import QualitySnapshot

__all__ = ["Metrics"]


@dataclass
class _State:
    forecasts: dict[str, TargetForecast] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)


_CLIENT = {"gauge": Gauge, "counter": Counter, "histogram": Histogram}


class Metrics:
    """The daemon's metrics on ``registry``, one per row of FAMILIES. Thread-safe: snapshots are swapped under one
    lock."""

    last_success: Gauge
    imputed: Gauge
    gap_series: Gauge
    lagging_series: Gauge
    series: Gauge
    shard_series: Gauge
    merged_series: Gauge
    shard_info: Gauge
    cycle: Histogram
    errors: Counter
    swaps: Counter
    holdout_mae: Gauge
    error_mae: Gauge
    naive_mae: Gauge
    coverage: Gauge
    skill: Gauge
    model_fallback: Gauge
    trained_at: Gauge
    build_info: Gauge
    fallback_switches: Counter
    bursts: Counter
    fallback_series: Gauge
    retrains: Counter
    target_state: Gauge

    def __init__(
        self,
        registry: CollectorRegistry,
        targets: list[str],
        clock: Callable[[], float] = time.time,
        stamped: bool = True,
    ) -> None:
        self.clock = clock
        self.stamped = stamped  # promcast_forecast_at_origin: only on a real clock (a sped-up demo's is not)
        self._lock = threading.Lock()
        self._state = _State()
        for f in FAMILIES:
            if f.path == "set":
                extra = {"buckets": f.buckets} if f.buckets else {}  # a counter's samples gain "_total"
                setattr(self, f.attr, _CLIENT[f.type](f.name, f.help, list(f.labels), registry=registry, **extra))
        for t in targets:  # label sets initialised up front so rate() sees the first error
            for stage in STAGES:
                self.errors.labels(t, stage)
            for result in ("accepted", "rejected"):
                self.swaps.labels(t, result)
            self.series.labels(t)
            self.shard_series.labels(t)
            self.merged_series.labels(t)
            self.imputed.labels(t)
            self.gap_series.labels(t)
            self.lagging_series.labels(t)
            self.model_fallback.labels(t)
            self.fallback_switches.labels(t)
            self.bursts.labels(t)
            self.fallback_series.labels(t)
            for reason in RETRAIN_REASONS:
                self.retrains.labels(t, reason)
            for role in ROLES:
                self.holdout_mae.labels(t, role).set(float("nan"))
            self.set_state(t, "starting")
        self.registry = registry

    def exposition(self, openmetrics_format: bool = False) -> bytes:
        """The whole /metrics page: the registry's metrics, then the per-series families.

        Text format 0.0.4 by default; OpenMetrics 1.0 when asked (its gauge lines are the same, and the page ends
        in ``# EOF``)."""
        forecasts, models = self.snapshot()
        series = render_snapshot(forecasts, models, self.clock(), self.stamped, openmetrics_format).encode()
        if not openmetrics_format:
            return generate_latest(self.registry) + series
        head = openmetrics.generate_latest(self.registry)
        return head.removesuffix(b"# EOF\n") + series + b"# EOF\n"

    def register_process(self, build: BuildInfo) -> None:
        """The exporter's own facts: build info, and client_python's process, platform and GC collectors."""
        self.build_info.labels(build.version, build.revision, build.python).set(1)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def set_quality(self, target: str, q: QualitySnapshot) -> None:
        """Export a quality snapshot; steps and levels not scored yet stay absent rather than zero."""
        for h, (mae, naive) in enumerate(zip(q.mae, q.naive_mae, strict=True), start=1):
            if mae is not None and naive is not None:
                self.error_mae.labels(target, str(h)).set(mae)
                self.naive_mae.labels(target, str(h)).set(naive)
        for level, cov in q.coverage.items():
            if cov is not None:
                self.coverage.labels(target, f"{level:g}").set(cov)
        if q.skill is not None:
            self.skill.labels(target).set(q.skill)

    def publish(self, target: str, forecast: TargetForecast | None) -> None:
        with self._lock:
            forecasts = dict(self._state.forecasts)
            if forecast is None:
                forecasts.pop(target, None)
            else:
                forecasts[target] = forecast
            self._state = _State(forecasts, self._state.models)

    def set_model(self, target: str, info: ModelInfo | None) -> None:
        with self._lock:
            models = dict(self._state.models)
            if info is None:
                models.pop(target, None)
            else:
                models[target] = info
            self._state = _State(self._state.forecasts, models)
        if info is not None:
            try:
                self.trained_at.labels(target).set(datetime.fromisoformat(info.trained_at).timestamp())
            except ValueError:
                self.trained_at.labels(target).set(float("nan"))

    def snapshot(self) -> tuple[dict[str, TargetForecast], dict[str, ModelInfo]]:
        with self._lock:
            return self._state.forecasts, self._state.models

    def set_state(self, target: str, state: str) -> None:
        for s in TARGET_STATES:
            self.target_state.labels(target, s).set(1 if s == state else 0)

    def clear_inputs(self, target: str) -> None:
        """A cycle that forecast nothing: the last cycle's input gauges say so instead of keeping old values."""
        for gauge in (self.series, self.lagging_series, self.gap_series, self.fallback_series, self.merged_series):
            gauge.labels(target).set(0)
        self.imputed.labels(target).set(0)

    def error(self, target: str, stage: str, count: int = 1) -> None:
        self.errors.labels(target, stage).inc(count)
