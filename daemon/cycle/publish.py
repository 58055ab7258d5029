"""The cycle's publish step: one immutable snapshot per target for /metrics, the gauges beside it, and the
forecasts kept for scoring when their actual values arrive."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from promcast.daemon.cycle.autoscale import recommend, scaling_for
from promcast.daemon.cycle.bands import Bounds
from promcast.daemon.cycle.guard import MODEL
from promcast.daemon.cycle.predict import Outcome
from promcast.daemon.cycle.score import Scorer
from promcast.daemon.cycle.windows import Windows
from promcast.daemon.http.families import TargetForecast
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import get_logger
from promcast.daemon.settings import TargetSettings

__all__ = ["publish", "report_gaps"]

log = get_logger("promcast.job")


def _replicas(target: TargetSettings, values: np.ndarray, bounds: Bounds, actual: np.ndarray) -> np.ndarray | None:
    """``autoscale.recommend`` on the published upper bound at ``replicas_level`` (default: the widest) and the
    last actual values; None without ``capacity_per_replica``."""
    scaling = scaling_for(target)
    if scaling is None:
        return None
    level = target.replicas_level or (max(bounds) if bounds else None)
    return recommend(values if level is None else bounds[level][1], actual, scaling)


def publish(
    target: TargetSettings,
    metrics: Metrics,
    scorer: Scorer,
    now: float,
    end: datetime,
    out: Outcome,
    max_age: float,
) -> None:
    """Hand the snapshot to /metrics and keep the model's own forecasts for scoring."""
    name, win = target.name, out.windows
    bursts = scorer.bursts
    burst_score, burst = bursts.state(win.keys) if bursts is not None else (None, None)
    snapshot = TargetForecast(
        now,
        end.timestamp(),
        tuple(win.keys),
        out.values,
        max_age,
        out.bounds,
        _replicas(target, out.values, out.bounds, win.values[:, -1]),
        win.origins / 1e9,
        tuple(out.sources),
        burst_score,
        burst,
    )
    scorer.quality.record(
        pd.Timestamp(end), win.keys, out.model, win.values[:, -1], out.bounds, win.origins, out.fallbacks
    )
    metrics.fallback_series.labels(name).set(sum(src != MODEL for src in out.sources))
    metrics.publish(name, snapshot)
    metrics.last_success.labels(name).set(now)
    metrics.imputed.labels(name).set(win.imputed_ratio)
    metrics.series.labels(name).set(len(win.keys))


def report_gaps(target: TargetSettings, metrics: Metrics, win: Windows, end: datetime) -> None:
    """Gauges and a log line for the windows that bridged an outage and the series whose samples lag."""
    name = target.name
    bridged, lagging = int(win.long_gap.sum()), int(np.count_nonzero(win.origins < pd.Timestamp(end).value))
    metrics.gap_series.labels(name).set(bridged)
    metrics.lagging_series.labels(name).set(lagging)
    if bridged:
        log.warning(
            "gap_bridged",
            target=name,
            series=bridged,
            imputed=round(win.imputed_ratio, 4),
            example=dict(win.keys[int(np.argmax(win.long_gap))]),
            policy=f"filled by interpolation; interval widened x{target.gap_interval_factor:g}",
        )
