"""The cycle's score step: the forecasts made earlier against the values that arrived.

The quality tracker returns the errors it scored; the guard and the burst detector act on them here, so that
each keeps its own state and the tracker keeps only the live quality.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from promcast.daemon.cycle.bursts import BurstDetector, BurstParams
from promcast.daemon.cycle.guard import Guard, GuardParams
from promcast.daemon.cycle.quality import QualityTracker
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import get_logger
from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources.samples import Samples
from promcast.daemon.types import QualitySnapshot, SeriesKey

__all__ = ["Scorer"]

log = get_logger("promcast.job")


class Scorer:
    """One target's live quality, guard and burst detector, fed once per cycle."""

    def __init__(self, target: TargetSettings, metrics: Metrics) -> None:
        self.target, self.metrics = target, metrics
        g, b = target.guard, target.bursts
        self.guard = Guard(target.horizon, GuardParams(g.window, g.margin, g.patience)) if g.enabled else None
        self.bursts = BurstDetector(BurstParams(b.threshold, b.persistence, b.spike)) if b.enabled else None
        self.quality = QualityTracker(
            pd.Timedelta(target.step),
            target.horizon,
            tuple(target.levels),
            target.quality_window,
            target.aci_gamma,
            b.enabled,
        )

    def score(self, data: dict[SeriesKey, Samples]) -> QualitySnapshot:
        """Score what arrived in ``data``; the guard and the burst detector act on the errors. The live quality."""
        scored, present = self.quality.observe(data), set(data)
        self.quality.forget(present)
        if self.guard is not None:
            for key, errors in scored.errors.items():
                self._switch(self.guard, key, errors)
            self.guard.forget(present)
        if self.bursts is not None:
            onsets = self.bursts.update(scored.burst_keys, scored.burst_scores) if scored.burst_keys else []
            for onset, value in onsets:
                self.metrics.bursts.labels(self.target.name).inc()
                log.warning(
                    "burst", target=self.target.name, series=dict(cast(SeriesKey, onset)), score=round(value, 3)
                )
            self.bursts.forget(present)
        quality = self.quality.snapshot()
        self.metrics.set_quality(self.target.name, quality)
        return quality

    def _switch(self, guard: Guard, key: SeriesKey, errors: dict[str, np.ndarray]) -> None:
        switch = guard.update(key, errors)
        if switch is None:
            return
        self.metrics.fallback_switches.labels(self.target.name).inc()
        log.warning(
            "fallback_switch",
            target=self.target.name,
            series=dict(switch.key),
            source=switch.source,
            previous=switch.previous,
            model_mae=round(switch.model_mae, 6),
            fallback_mae=round(switch.fallback_mae, 6),
        )
