"""Every metric the daemon exports, declared in one place against a registry passed in from main().

Jobs compute and hand over immutable snapshots; a scrape only renders them, never queries or predicts.
Forecasts older than the staleness limit are no longer rendered, so a forecast is never served as fresh.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from datetime import datetime
from typing import Literal

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
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString

from forecaster.gate import MODEL

from .build import BuildInfo
from .quality import QualitySnapshot
from .types import SeriesKey

__all__ = ["FAMILIES", "ROLES", "STAGES", "Family", "Metrics", "ModelInfo", "TargetForecast", "render_snapshot"]

ROLES = ("champion", "challenger")
RETRAIN_REASONS = ("cron", "drift", "first", "manual")
STAGES = ("query", "input", "predict", "publish", "model", "train", "vanished", "late", "cycle", "scheduler")
_RESERVED = {"target", "h", "level", "__name__"}
_BAD = re.compile(r"[^a-zA-Z0-9_]")
_AT_ORIGIN = "promcast_forecast_at_origin"


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
    sources: tuple[str, ...] | None = None  # (S,) where each series' forecast comes from: "model" or a fallback
    burst_score: np.ndarray | None = None  # (S,) the last burst score (NaN before any), when bursts are detected
    burst: np.ndarray | None = None  # (S,) 1.0 while in a burst, else 0.0

    def fresh(self, now: float) -> bool:
        """Whether it may still be served: a stale forecast is never served as if it were fresh."""
        return now - self.computed_at <= self.max_age


@dataclass(frozen=True)
class ModelInfo:
    model: str
    version: str
    trained_at: str
    runtime: str  # "numpy" (forecaster.frozen) or "torch"
    serves: str = MODEL  # NAIVE where the model lost to naive on its own validation windows (forecaster.gate.judge)


@dataclass
class _State:
    forecasts: dict[str, TargetForecast] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)


def _label_name(name: str) -> str:
    clean = _BAD.sub("_", name)
    return f"exported_{clean}" if clean in _RESERVED or clean[:1].isdigit() else clean


@dataclass(frozen=True)
class Family:
    """One metric family. ``path`` is how it reaches /metrics, fixed here once:

    - ``"set"``: a client_python metric on the registry, kept as ``Metrics.<attr>`` and set by the code that knows
      the value (a job, the swap, the retrain report);
    - ``"snapshot"``: formatted at scrape time from the published forecasts (``TargetForecast``, ``ModelInfo``),
      so that a stale forecast disappears at once and 60,000 per-series lines cost a string join, not a Sample
      object each (prometheus_client's path took about 1 s per scrape at 1,000 series).
    """

    name: str
    type: Literal["gauge", "counter", "histogram"]
    labels: tuple[str, ...]
    help: str
    path: Literal["set", "snapshot"] = "set"
    attr: str = ""  # the Metrics attribute of a "set" family
    buckets: tuple[float, ...] = ()  # a histogram's


_SERIES = ("<series labels>", "target")  # a per-series family: the series' own labels, then ours
_CYCLE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# Every family the daemon exports (client_python's process, platform and GC collectors aside). A new gauge is one
# row here and the code that sets it (a "set" row) or the snapshot field it is rendered from (a "snapshot" row).
FAMILIES: tuple[Family, ...] = (
    Family("promcast_forecast", "gauge", (*_SERIES, "h"), "Forecast of the target's metric for now + h steps.",
           "snapshot"),
    Family("promcast_forecast_lower", "gauge", (*_SERIES, "level", "h"),
           "Lower bound of the central prediction interval.", "snapshot"),
    Family("promcast_forecast_upper", "gauge", (*_SERIES, "level", "h"),
           "Upper bound of the central prediction interval.", "snapshot"),
    Family("promcast_recommended_replicas", "gauge", _SERIES,
           "Replicas the upper bound over the next startup_steps + 1 steps needs (capacity x target utilisation), "
           "never below what the last actual value needs, clamped (daemon.autoscale.recommend).", "snapshot"),
    Family("promcast_forecast_at_origin", "gauge", (*_SERIES, "h"),
           "promcast_forecast stamped with its origin (the series' last input step) as the sample time, for exact "
           "'offset h steps' overlays. Dashboards only: Prometheus writes no staleness marker for stamped samples.",
           "snapshot"),
    Family("promcast_forecast_source", "gauge", (*_SERIES, "source"),
           "The source each series' published forecast comes from (value 1): model, naive or seasonal_naive.",
           "snapshot"),
    Family("promcast_forecast_timestamp_seconds", "gauge", ("target",),
           "When the published forecast was computed.", "snapshot"),
    Family("promcast_forecast_origin_timestamp_seconds", "gauge", ("target",),
           "Time of the last input step; h steps after it is what promcast_forecast{h} predicts.", "snapshot"),
    Family("promcast_model_info", "gauge", ("target", "model", "version", "trained_at", "runtime", "serves"),
           "The model serving each target (value 1); serves=naive: it lost to naive on validation, naive is served.",
           "snapshot"),
    Family("promcast_last_success_timestamp_seconds", "gauge", ("target",),
           "When the target's last forecast cycle succeeded.", attr="last_success"),
    Family("promcast_input_imputed_ratio", "gauge", ("target",),
           "Share of the input window filled by interpolation.", attr="imputed"),
    Family("promcast_input_gap_series", "gauge", ("target",),
           "Series whose input window bridged a gap longer than max_gap steps (filled; interval widened).",
           attr="gap_series"),
    Family("promcast_input_lagging_series", "gauge", ("target",),
           "Series whose last sample is older than the cycle's end: their forecast starts at their own origin.",
           attr="lagging_series"),
    Family("promcast_series", "gauge", ("target",), "Series forecast in the last cycle.", attr="series"),
    Family("promcast_shard_series", "gauge", ("target",),
           "Series of the target in this replica's shard in the last query (the series it owns).",
           attr="shard_series"),
    Family("promcast_merged_series", "gauge", ("target",),
           "Source series summed into another in the target's last read, once drop_labels were removed.",
           attr="merged_series"),
    Family("promcast_shard_info", "gauge", ("shard_index", "shard_count"),
           "This replica's shard (value 1); replicas of one deployment must agree on shard_count.",
           attr="shard_info"),
    Family("promcast_cycle_duration_seconds", "histogram", ("target",),
           "Duration of one forecast cycle (query, inference, publishing).", attr="cycle", buckets=_CYCLE_BUCKETS),
    Family("promcast_errors", "counter", ("target", "stage"), "Errors by target and stage.", attr="errors"),
    Family("promcast_model_swaps", "counter", ("target", "result"), "Model hot swaps by result.", attr="swaps"),
    Family("promcast_model_holdout_mae", "gauge", ("target", "role"),
           "Holdout MAE from the latest retrain report: the serving champion's and the last challenger's "
           "(NaN when unknown).", attr="holdout_mae"),
    Family("promcast_forecast_error_mae", "gauge", ("target", "h"),
           "Rolling MAE of the forecasts of step h, scored against the actual values as they arrived.",
           attr="error_mae"),
    Family("promcast_forecast_naive_error_mae", "gauge", ("target", "h"),
           "Rolling MAE of the naive forecast (last value repeated) over the same origins and steps.",
           attr="naive_mae"),
    Family("promcast_interval_coverage_ratio", "gauge", ("target", "level"),
           "Rolling share of actual values inside the interval of the given nominal level.", attr="coverage"),
    Family("promcast_forecast_skill_ratio", "gauge", ("target",),
           "1 - MAE(model) / MAE(naive) over the rolling window; above 0 the model beats naive.", attr="skill"),
    Family("promcast_model_fallback", "gauge", ("target",),
           "1 while the target serves an older version because the one `current` names does not load.",
           attr="model_fallback"),
    Family("promcast_model_trained_timestamp_seconds", "gauge", ("target",),
           "When the serving model was trained.", attr="trained_at"),
    Family("promcast_burst_score", "gauge", _SERIES,
           "How far the last actual value lay outside the widest interval of the forecasts made for it, in interval "
           "widths (0 inside); the least over those forecasts.", "snapshot"),
    Family("promcast_burst", "gauge", _SERIES,
           "1 while the series is in a burst: its score above bursts.threshold for bursts.persistence steps running.",
           "snapshot"),
    Family("promcast_bursts", "counter", ("target",), "Bursts begun (the flag rising), over the target's series.",
           attr="bursts"),
    Family("promcast_fallback_switches", "counter", ("target",),
           "Series switched between the model and a fallback by the live guard, either way.",
           attr="fallback_switches"),
    Family("promcast_fallback_series", "gauge", ("target",),
           "Series whose published forecast is a fallback's (the model has been losing to it).",
           attr="fallback_series"),
    Family("promcast_retrains", "counter", ("target", "reason"),
           "Retrains, by reason: cron (retrain_cron), drift (drift_retrain), first (the target's own model, "
           "trained while the pretrained model serves it), all started by the daemon; manual (a promcast train "
           "it did not start, counted when its decision report appears).",
           attr="retrains"),
    Family("promcast_build_info", "gauge", ("version", "revision", "python"),
           "The running build of promcast (value 1).", attr="build_info"),
)  # fmt: skip

_BY_NAME = {f.name: f for f in FAMILIES}
_CLIENT = {"gauge": Gauge, "counter": Counter, "histogram": Histogram}


def _head(name: str) -> str:
    f = _BY_NAME[name]
    return f"# HELP {name} {f.help}\n# TYPE {name} {f.type}\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _rows(out: list[str], name: str, labels: str, row: np.ndarray) -> None:
    for h, v in enumerate(row.tolist(), start=1):
        out.append(f'{name}{{{labels},h="{h}"}} {floatToGoString(v)}\n')


def _stamp(seconds: float, openmetrics_format: bool) -> str:
    """A sample timestamp: milliseconds in the text format, seconds in OpenMetrics."""
    return f"{seconds:.3f}" if openmetrics_format else str(round(seconds * 1000))


def _labels(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)


def render_snapshot(
    forecasts: dict[str, TargetForecast],
    models: dict[str, ModelInfo],
    now: float,
    stamped: bool = False,
    openmetrics_format: bool = False,
) -> str:
    """Every "snapshot" family of FAMILIES, from fresh forecasts only; ``stamped`` adds promcast_forecast_at_origin."""
    lines: dict[str, list[str]] = {f.name: [] for f in FAMILIES if f.path == "snapshot"}
    for target, fc in sorted(forecasts.items()):
        if not fc.fresh(now):
            continue
        for family, value in (("timestamp", fc.computed_at), ("origin_timestamp", fc.origin)):
            name = f"promcast_forecast_{family}_seconds"
            lines[name].append(f"{name}{{{_labels([('target', target)])}}} {floatToGoString(value)}\n")
        for i, key in enumerate(fc.keys):
            labels = _labels([*((_label_name(k), v) for k, v in key), ("target", target)])
            _rows(lines["promcast_forecast"], "promcast_forecast", labels, fc.values[i])
            if stamped:
                when = _stamp(float(fc.origins[i]) if fc.origins is not None else fc.origin, openmetrics_format)
                for h, v in enumerate(fc.values[i].tolist(), start=1):
                    lines[_AT_ORIGIN].append(f'{_AT_ORIGIN}{{{labels},h="{h}"}} {floatToGoString(v)} {when}\n')
            for level, (lo, hi) in fc.bounds.items():
                with_level = f'{labels},level="{level:g}"'
                _rows(lines["promcast_forecast_lower"], "promcast_forecast_lower", with_level, lo[i])
                _rows(lines["promcast_forecast_upper"], "promcast_forecast_upper", with_level, hi[i])
            if fc.sources is not None:
                lines["promcast_forecast_source"].append(
                    f'promcast_forecast_source{{{labels},source="{_escape(fc.sources[i])}"}} 1.0\n'
                )
            if fc.burst_score is not None and fc.burst is not None and not np.isnan(fc.burst_score[i]):
                lines["promcast_burst_score"].append(
                    f"promcast_burst_score{{{labels}}} {floatToGoString(float(fc.burst_score[i]))}\n"
                )
                lines["promcast_burst"].append(f"promcast_burst{{{labels}}} {floatToGoString(float(fc.burst[i]))}\n")
            if fc.replicas is not None:
                value = floatToGoString(float(fc.replicas[i]))
                lines["promcast_recommended_replicas"].append(f"promcast_recommended_replicas{{{labels}}} {value}\n")
    for target, mi in sorted(models.items()):
        pairs = list(zip(_BY_NAME["promcast_model_info"].labels, (target, *astuple(mi)), strict=True))
        lines["promcast_model_info"].append(f"promcast_model_info{{{_labels(pairs)}}} 1.0\n")
    out = []
    for name, rows in lines.items():
        if name == _AT_ORIGIN and not stamped:
            continue
        out.append(_head(name))
        out.extend(rows)
    return "".join(out)


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

    def error(self, target: str, stage: str, count: int = 1) -> None:
        self.errors.labels(target, stage).inc(count)
