"""Every metric the daemon exports, declared in one place against a registry passed in from main().

Jobs compute and hand over immutable snapshots; a scrape only renders them, never queries or predicts.
Forecasts older than the staleness limit are no longer rendered, so a forecast is never served as fresh.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
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
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .build import BuildInfo
from .quality import QualitySnapshot
from .source import SeriesKey

__all__ = ["ROLES", "STAGES", "Metrics", "ModelInfo", "TargetForecast", "render_series"]

ROLES = ("champion", "challenger")
STAGES = ("query", "input", "predict", "publish", "model", "train", "vanished", "late", "cycle", "scheduler")
_RESERVED = {"target", "h", "level", "__name__"}
_BAD = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class TargetForecast:
    """One cycle's forecasts for one target: a (series, horizon) array keyed by series label sets."""

    computed_at: float  # unix seconds, on the source's clock
    origin: float  # unix seconds of the last input step; step h forecasts origin + h * step
    keys: tuple[SeriesKey, ...]
    values: np.ndarray  # (S, H)
    max_age: float  # seconds after which this snapshot is stale and no longer rendered
    bounds: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # level -> (S, H) x 2
    replicas: np.ndarray | None = None  # (S,) recommended replicas, when capacity_per_replica is set
    origins: np.ndarray | None = None  # (S,) unix seconds of each series' last input step (default: origin)

    def fresh(self, now: float) -> bool:
        """Whether it may still be served: a stale forecast is never served as if it were fresh."""
        return now - self.computed_at <= self.max_age


@dataclass(frozen=True)
class ModelInfo:
    model: str
    version: str
    trained_at: str
    runtime: str  # "numpy" (forecaster.frozen) or "torch"


@dataclass
class _State:
    forecasts: dict[str, TargetForecast] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)


def _label_name(name: str) -> str:
    clean = _BAD.sub("_", name)
    return f"exported_{clean}" if clean in _RESERVED or clean[:1].isdigit() else clean


# The per-series families: one sample per series and step, so 1,000 series make 60,000 lines. They are
# formatted straight from the snapshot's arrays; prometheus_client's one Sample object per line took about
# 1 s per scrape at that size.
_SERIES_FAMILIES = {
    "promcast_forecast": "Forecast of the target's metric for now + h steps.",
    "promcast_forecast_lower": "Lower bound of the central prediction interval.",
    "promcast_forecast_upper": "Upper bound of the central prediction interval.",
    "promcast_recommended_replicas": "ceil(max over the horizon of the upper bound / capacity), clamped.",
}
_AT_ORIGIN = "promcast_forecast_at_origin"
_AT_ORIGIN_HELP = (
    "promcast_forecast stamped with its origin (the series' last input step) as the sample time, for exact "
    "'offset h steps' overlays. Dashboards only: Prometheus writes no staleness marker for stamped samples."
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _rows(out: list[str], name: str, labels: str, row: np.ndarray) -> None:
    for h, v in enumerate(row.tolist(), start=1):
        out.append(f'{name}{{{labels},h="{h}"}} {floatToGoString(v)}\n')


def _stamp(seconds: float, openmetrics_format: bool) -> str:
    """A sample timestamp: milliseconds in the text format, seconds in OpenMetrics."""
    return f"{seconds:.3f}" if openmetrics_format else str(round(seconds * 1000))


def render_series(
    forecasts: dict[str, TargetForecast], now: float, stamped: bool = False, openmetrics_format: bool = False
) -> str:
    """The per-series families, fresh snapshots only; ``stamped`` adds promcast_forecast_at_origin."""
    lines: dict[str, list[str]] = {name: [] for name in _SERIES_FAMILIES}
    at_origin: list[str] = []
    for target, fc in sorted(forecasts.items()):
        if not fc.fresh(now):
            continue
        for i, key in enumerate(fc.keys):
            pairs = [*((_label_name(k), v) for k, v in key), ("target", target)]
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
            _rows(lines["promcast_forecast"], "promcast_forecast", labels, fc.values[i])
            if stamped:
                when = _stamp(float(fc.origins[i]) if fc.origins is not None else fc.origin, openmetrics_format)
                for h, v in enumerate(fc.values[i].tolist(), start=1):
                    at_origin.append(f'{_AT_ORIGIN}{{{labels},h="{h}"}} {floatToGoString(v)} {when}\n')
            for level, (lo, hi) in fc.bounds.items():
                with_level = f'{labels},level="{level:g}"'
                _rows(lines["promcast_forecast_lower"], "promcast_forecast_lower", with_level, lo[i])
                _rows(lines["promcast_forecast_upper"], "promcast_forecast_upper", with_level, hi[i])
            if fc.replicas is not None:
                value = floatToGoString(float(fc.replicas[i]))
                lines["promcast_recommended_replicas"].append(f"promcast_recommended_replicas{{{labels}}} {value}\n")
    out = []
    for name, help_text in _SERIES_FAMILIES.items():
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
        out.extend(lines[name])
    if stamped:
        out.append(f"# HELP {_AT_ORIGIN} {_AT_ORIGIN_HELP}\n# TYPE {_AT_ORIGIN} gauge\n")
        out.extend(at_origin)
    return "".join(out)


class _TargetCollector(Collector):
    """Per-target gauges read from the same snapshots as the series families."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        forecasts, models = self._m.snapshot()
        now = self._m.clock()
        stamp = GaugeMetricFamily(
            "promcast_forecast_timestamp_seconds", "When the published forecast was computed.", labels=["target"]
        )
        origin = GaugeMetricFamily(
            "promcast_forecast_origin_timestamp_seconds",
            "Time of the last input step; h steps after it is what promcast_forecast{h} predicts.",
            labels=["target"],
        )
        for target, fc in sorted(forecasts.items()):
            if fc.fresh(now):
                stamp.add_metric([target], fc.computed_at)
                origin.add_metric([target], fc.origin)
        info = GaugeMetricFamily(
            "promcast_model_info",
            "The model serving each target (value 1).",
            labels=["target", "model", "version", "trained_at", "runtime"],
        )
        for target, mi in sorted(models.items()):
            info.add_metric([target, mi.model, mi.version, mi.trained_at, mi.runtime], 1.0)
        yield from (stamp, origin, info)


class Metrics:
    """The daemon's metrics on ``registry``. Thread-safe: snapshots are swapped under one lock."""

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
        self.last_success = Gauge(
            "promcast_last_success_timestamp_seconds",
            "When the target's last forecast cycle succeeded.",
            ["target"],
            registry=registry,
        )
        self.imputed = Gauge(
            "promcast_input_imputed_ratio",
            "Share of the input window filled by interpolation.",
            ["target"],
            registry=registry,
        )
        self.gap_series = Gauge(
            "promcast_input_gap_series",
            "Series whose input window bridged a gap longer than max_gap steps (filled; interval widened).",
            ["target"],
            registry=registry,
        )
        self.lagging_series = Gauge(
            "promcast_input_lagging_series",
            "Series whose last sample is older than the cycle's end: their forecast starts at their own origin.",
            ["target"],
            registry=registry,
        )
        self.series = Gauge("promcast_series", "Series forecast in the last cycle.", ["target"], registry=registry)
        self.shard_series = Gauge(
            "promcast_shard_series",
            "Series of the target in this replica's shard in the last query (the series it owns).",
            ["target"],
            registry=registry,
        )
        self.merged_series = Gauge(
            "promcast_merged_series",
            "Source series summed into another in the target's last read, once drop_labels were removed.",
            ["target"],
            registry=registry,
        )
        self.shard_info = Gauge(
            "promcast_shard_info",
            "This replica's shard (value 1); replicas of one deployment must agree on shard_count.",
            ["shard_index", "shard_count"],
            registry=registry,
        )
        self.cycle = Histogram(
            "promcast_cycle_duration_seconds",
            "Duration of one forecast cycle (query, inference, publishing).",
            ["target"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.errors = Counter("promcast_errors", "Errors by target and stage.", ["target", "stage"], registry=registry)
        self.swaps = Counter(
            "promcast_model_swaps", "Model hot swaps by result.", ["target", "result"], registry=registry
        )
        self.holdout_mae = Gauge(
            "promcast_model_holdout_mae",
            "Holdout MAE from the latest retrain report: the serving champion's and the last challenger's "
            "(NaN when unknown).",
            ["target", "role"],
            registry=registry,
        )
        self.error_mae = Gauge(
            "promcast_forecast_error_mae",
            "Rolling MAE of the forecasts of step h, scored against the actual values as they arrived.",
            ["target", "h"],
            registry=registry,
        )
        self.naive_mae = Gauge(
            "promcast_forecast_naive_error_mae",
            "Rolling MAE of the naive forecast (last value repeated) over the same origins and steps.",
            ["target", "h"],
            registry=registry,
        )
        self.coverage = Gauge(
            "promcast_interval_coverage_ratio",
            "Rolling share of actual values inside the interval of the given nominal level.",
            ["target", "level"],
            registry=registry,
        )
        self.skill = Gauge(
            "promcast_forecast_skill_ratio",
            "1 - MAE(model) / MAE(naive) over the rolling window; above 0 the model beats naive.",
            ["target"],
            registry=registry,
        )
        self.model_fallback = Gauge(
            "promcast_model_fallback",
            "1 while the target serves an older version because the one `current` names does not load.",
            ["target"],
            registry=registry,
        )
        self.trained_at = Gauge(
            "promcast_model_trained_timestamp_seconds",
            "When the serving model was trained.",
            ["target"],
            registry=registry,
        )
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
            for role in ROLES:
                self.holdout_mae.labels(t, role).set(float("nan"))
        self.registry = registry
        registry.register(_TargetCollector(self))

    def exposition(self, openmetrics_format: bool = False) -> bytes:
        """The whole /metrics page: the registry's metrics, then the per-series families.

        Text format 0.0.4 by default; OpenMetrics 1.0 when asked (its gauge lines are the same, and the page ends
        in ``# EOF``)."""
        forecasts, _ = self.snapshot()
        series = render_series(forecasts, self.clock(), self.stamped, openmetrics_format).encode()
        if not openmetrics_format:
            return generate_latest(self.registry) + series
        head = openmetrics.generate_latest(self.registry)
        return head.removesuffix(b"# EOF\n") + series + b"# EOF\n"

    def register_process(self, build: BuildInfo) -> None:
        """The exporter's own facts: build info, and client_python's process, platform and GC collectors."""
        info = Gauge(
            "promcast_build_info",
            "The running build of promcast (value 1).",
            ["version", "revision", "python"],
            registry=self.registry,
        )
        info.labels(build.version, build.revision, build.python).set(1)
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

    def error(self, target: str, stage: str, count: int = 1) -> None:
        self.errors.labels(target, stage).inc(count)
