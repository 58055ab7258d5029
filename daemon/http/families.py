"""The table of every metric family the daemon exports, and the snapshots the "snapshot" families render from.

A new gauge is one row of ``FAMILIES`` and the code that sets it (a "set" row) or the snapshot field it is
rendered from (a "snapshot" row). ``docs/metrics.md`` is generated from this table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from promcast.daemon.types import SeriesKey

__all__ = [
    "FAMILIES",
    "RETRAIN_REASONS",
    "ROLES",
    "STAGES",
    "TARGET_STATES",
    "Family",
    "ModelInfo",
    "TargetForecast",
    "label_name",
]

ROLES = ("champion", "challenger")
RETRAIN_REASONS = ("cron", "drift", "first", "manual")
STAGES = ("query", "input", "predict", "publish", "push", "model", "train", "vanished", "late", "cycle", "scheduler")
# What a target's last cycle did. no_data and query_rejected: nothing the daemon can forecast (the query matches
# nothing usable, or the source refuses it); /readyz does not wait for such a target unless it is ``required``.
TARGET_STATES = ("starting", "forecasting", "no_model", "no_data", "query_failed", "query_rejected", "failed")
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
    runtime: str  # "numpy" (forecaster.numpy_runtime) or "torch"
    serves: str = "model"  # "naive" where the model lost to naive on its own validation windows (the verdict)


def label_name(name: str) -> str:
    clean = _BAD.sub("_", name)
    return f"exported_{clean}" if clean in _RESERVED or clean[:1].isdigit() else clean


@dataclass(frozen=True)
class Family:
    """One metric family. ``path`` is how it reaches /metrics, fixed here once:

    - ``"set"``: a client_python metric on the registry, kept as ``Metrics.<attr>`` and set by the code that knows
      the value (a job, the swap, the retrain report);
    - ``"snapshot"``: formatted at scrape time from the published forecasts (``TargetForecast``, ``ModelInfo``)
      by ``daemon/http/render.py``.
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

# Every family the daemon exports (client_python's process, platform and GC collectors aside).
FAMILIES: tuple[Family, ...] = (
    Family("promcast_forecast", "gauge", (*_SERIES, "h"), "Forecast of the target's metric for now + h steps.",
           "snapshot"),
    Family("promcast_forecast_lower", "gauge", (*_SERIES, "level", "h"),
           "Lower bound of the central prediction interval.", "snapshot"),
    Family("promcast_forecast_upper", "gauge", (*_SERIES, "level", "h"),
           "Upper bound of the central prediction interval.", "snapshot"),
    Family("promcast_recommended_replicas", "gauge", _SERIES,
           "Replicas the upper bound over the next startup_steps + 1 steps needs (capacity x target utilisation), "
           "never below what the last actual value needs, clamped.", "snapshot"),
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
           "Series whose last sample lags the cycle's end: their forecast starts at their own origin.",
           attr="lagging_series"),
    Family("promcast_series", "gauge", ("target",), "Series forecast in the last cycle.", attr="series"),
    Family("promcast_target_state", "gauge", ("target", "state"),
           "What the target's last cycle did (value 1 for its state, 0 for the others): starting, forecasting, "
           "no_model, no_data (no usable series), query_failed, query_rejected or failed.",
           attr="target_state"),
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

BY_NAME = {f.name: f for f in FAMILIES}
