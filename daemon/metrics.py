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

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from .source import SeriesKey

__all__ = ["ROLES", "STAGES", "Metrics", "ModelInfo", "TargetForecast"]

ROLES = ("champion", "challenger")
STAGES = ("query", "input", "predict", "publish", "model", "train", "vanished", "scheduler")
_RESERVED = {"target", "h", "__name__"}
_BAD = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class TargetForecast:
    """One cycle's forecasts for one target: a (series, horizon) array keyed by series label sets."""

    computed_at: float  # unix seconds, on the source's clock
    origin: float  # unix seconds of the last input step; step h forecasts origin + h * step
    keys: tuple[SeriesKey, ...]
    values: np.ndarray  # (S, H)
    max_age: float  # seconds after which this snapshot is stale and no longer rendered


@dataclass(frozen=True)
class ModelInfo:
    model: str
    version: str
    trained_at: str


@dataclass
class _State:
    forecasts: dict[str, TargetForecast] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)


def _label_name(name: str) -> str:
    clean = _BAD.sub("_", name)
    return f"exported_{clean}" if clean in _RESERVED or clean[:1].isdigit() else clean


class _ForecastCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        forecasts, models = self._m.snapshot()
        now = self._m.clock()
        value = GaugeMetricFamily("promcast_forecast", "Forecast of the target's metric for now + h steps.")
        stamp = GaugeMetricFamily(
            "promcast_forecast_timestamp_seconds", "When the published forecast was computed.", labels=["target"]
        )
        origin = GaugeMetricFamily(
            "promcast_forecast_origin_timestamp_seconds",
            "Time of the last input step; h steps after it is what promcast_forecast{h} predicts.",
            labels=["target"],
        )
        for target, fc in sorted(forecasts.items()):
            if now - fc.computed_at > fc.max_age:
                continue
            stamp.add_metric([target], fc.computed_at)
            origin.add_metric([target], fc.origin)
            for key, row in zip(fc.keys, fc.values, strict=True):
                labels = {_label_name(k): v for k, v in key}
                for h, v in enumerate(row, start=1):
                    value.samples.append(
                        Sample("promcast_forecast", {**labels, "target": target, "h": str(h)}, float(v))
                    )
        info = GaugeMetricFamily(
            "promcast_model_info",
            "The model serving each target (value 1).",
            labels=["target", "model", "version", "trained_at"],
        )
        for target, mi in sorted(models.items()):
            info.add_metric([target, mi.model, mi.version, mi.trained_at], 1.0)
        yield from (value, stamp, origin, info)


class Metrics:
    """The daemon's metrics on ``registry``. Thread-safe: snapshots are swapped under one lock."""

    def __init__(self, registry: CollectorRegistry, targets: list[str], clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
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
        self.series = Gauge("promcast_series", "Series forecast in the last cycle.", ["target"], registry=registry)
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
        for t in targets:  # label sets initialised up front so rate() sees the first error
            for stage in STAGES:
                self.errors.labels(t, stage)
            for result in ("accepted", "rejected"):
                self.swaps.labels(t, result)
            self.series.labels(t)
            self.imputed.labels(t)
            for role in ROLES:
                self.holdout_mae.labels(t, role).set(float("nan"))
        registry.register(_ForecastCollector(self))

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

    def snapshot(self) -> tuple[dict[str, TargetForecast], dict[str, ModelInfo]]:
        with self._lock:
            return self._state.forecasts, self._state.models

    def error(self, target: str, stage: str, count: int = 1) -> None:
        self.errors.labels(target, stage).inc(count)
