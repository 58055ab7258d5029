"""One target's forecast cycle in four named steps: read, score, predict, publish. It owns its error boundary.

- read: the new samples of every series, and their input windows on the target's step grid;
- score: the forecasts made earlier against the values that arrived; the errors go to the guard and the burst
  detector, the live quality to its gauges and to the drift check;
- predict: one batched inference, each series' bands adapted online, and the guard's fallbacks
  (daemon.cycle.predict);
- publish: one snapshot for /metrics, and the forecasts kept for scoring (daemon.cycle.publish).

The model's life (the first model, the pretrained install, the own model, drift retrains) is ``ModelLife``'s.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from promcast.daemon.clock import origin
from promcast.daemon.cycle.heap import release_free_memory
from promcast.daemon.cycle.predict import Outcome, predict
from promcast.daemon.cycle.publish import publish, report_gaps
from promcast.daemon.cycle.read import NoRead, Reader
from promcast.daemon.cycle.score import Scorer
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import get_logger
from promcast.daemon.models.lifecycle import ModelLife
from promcast.daemon.models.serving import ModelHolder, ServedModel
from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources import Source
from promcast.daemon.sources.sharding import Shard
from promcast.daemon.types import SeriesKey

__all__ = ["CycleResult", "ForecastJob"]

log = get_logger("promcast.job")


@dataclass
class CycleResult:
    target: str
    ok: bool
    end: datetime | None = None
    keys: list[SeriesKey] = field(default_factory=list)
    forecasts: np.ndarray | None = None  # (S, horizon)
    version: str | None = None
    error: str | None = None
    state: str = "failed"  # one of http.families.TARGET_STATES, or "stopping"


class ForecastJob:
    """Runs one target's cycles. Any failure is logged and counted; the last good state keeps serving."""

    def __init__(
        self,
        target: TargetSettings,
        source: Source,
        holder: ModelHolder,
        metrics: Metrics,
        max_age_steps: float,
        shard: Shard = Shard(),
        stop: threading.Event | None = None,
        train_timeout: float = math.inf,
    ) -> None:
        self.stop = stop or threading.Event()  # the daemon's: set on SIGTERM, it ends a first training at once
        self.target, self.source, self.holder, self.metrics = target, source, holder, metrics
        self.life = ModelLife(target, source, holder, metrics, shard, self.stop, train_timeout)
        self.started_at: float | None = None  # time.monotonic() when the last cycle started
        self.max_age = max_age_steps * target.interval
        self.last_window: np.ndarray | None = None  # the first series' latest window, a probe for new models
        self._running = threading.Lock()
        self.reader = Reader(target, source, metrics, shard.select)
        self.scorer = Scorer(target, metrics)
        self.state, self.why = "starting", "no cycle yet"  # the last cycle's outcome, for /readyz
        self.on_published: Callable[[str], object] | None = None  # the daemon's forecast writer, after publish

    @property
    def progress_at(self) -> float | None:
        """time.monotonic() of the last sign of progress (/healthz reads it): a cycle's start, or the end of a
        first training, which is that cycle's progress until the next cycle starts."""
        marks = [t for t in (self.started_at, self.life.trained_at) if t is not None]
        return max(marks, default=None)

    def run_exclusive(self) -> CycleResult | None:
        """One cycle unless one is running already (the start-up cycle and the first boundary's may meet)."""
        if not self._running.acquire(blocking=False):
            log.debug("cycle_already_running", target=self.target.name)
            return None
        try:
            return self()
        finally:
            self._running.release()

    def __call__(self) -> CycleResult:
        if self.stop.is_set():  # the daemon is stopping: publish nothing more
            return CycleResult(self.target.name, False, error="stopping", state="stopping")
        self.started_at, t0 = time.monotonic(), time.perf_counter()
        try:
            result = self.cycle()
            if not result.ok and self.holder.get() is None and self.life.error:
                result.error = self.life.why_none()  # the cause, not just the symptom
        except Exception as exc:  # the boundary: a bug in one cycle must never stop the next
            log.exception("cycle_failed", target=self.target.name)
            self.metrics.error(self.target.name, "cycle")
            result = CycleResult(self.target.name, False, error=repr(exc))
        self._settle(result)
        self.metrics.cycle.labels(self.target.name).observe(time.perf_counter() - t0)
        release_free_memory()  # the cycle's garbage goes back to the OS, not into a high-water mark
        return result

    def _settle(self, result: CycleResult) -> None:
        """The target's state for /readyz and its gauge; a cycle that forecast nothing zeroes its input gauges."""
        if result.state == "stopping":
            return
        name = self.target.name
        self.state, self.why = result.state, result.error or ""
        self.metrics.set_state(name, result.state)
        if not result.ok:
            self.metrics.clear_inputs(name)

    def cycle(self) -> CycleResult:
        name, step = self.target.name, self.target.step
        served = self.life.ensure(origin(self.source.now(), step))  # the first start may train for minutes
        if served is None:
            return CycleResult(
                name, False, None, error="no model", state="no_data" if self.life.no_data else "no_model"
            )
        self.life.ask_own_model(served)
        # The end is taken after any training, and a cycle that took past the next step boundary is run again
        # on fresh data: a forecast whose origin is a step old would have its first step in the past.
        for _ in range(2):
            t0 = time.perf_counter()
            end = origin(self.source.now(), step)
            outcome = self._forecast(served, end)
            if isinstance(outcome, CycleResult):
                return outcome
            if self.stop.is_set():  # the daemon began stopping during the cycle: publish nothing more
                return CycleResult(name, False, end, error="stopping", state="stopping")
            now = self.source.now()
            if now - end < step:
                self.last_window = outcome.windows.values[0]
                publish(self.target, self.metrics, self.scorer, now.timestamp(), end, outcome, self.max_age)
                if self.on_published is not None:
                    self.on_published(name)
                self._log(served, end, outcome, time.perf_counter() - t0)
                return CycleResult(
                    name, True, end, outcome.windows.keys, outcome.values, served.version, state="forecasting"
                )
            log.warning("cycle_late", target=name, end=end.isoformat(), seconds=round(time.perf_counter() - t0, 3))
        self.metrics.error(name, "late")
        return CycleResult(name, False, end, error="every forecast was a step old before it could be published")

    def _forecast(self, served: ServedModel, end: datetime) -> Outcome | CycleResult:
        """Read, score and predict at ``end``: the forecasts to publish, or the failed cycle's result."""
        name = self.target.name
        read = self.reader.read(end)
        if isinstance(read, NoRead):
            return CycleResult(name, False, end, error=read.why, state=read.state)
        self.life.check_drift(self.scorer.score(read.data).skill)
        calibration = self.scorer.quality.calibration  # each series' band widths, adapted as values arrive
        try:
            outcome = predict(served, read.windows, self.target, calibration, self.scorer.guard, self._predict_failed)
        except ValueError as exc:  # no series could be forecast
            return CycleResult(name, False, end, error=str(exc))
        report_gaps(self.target, self.metrics, outcome.windows, end)
        return outcome

    def _predict_failed(self, key: SeriesKey, exc: ValueError) -> None:
        self.metrics.error(self.target.name, "predict")
        log.error("predict_failed", target=self.target.name, series=dict(key), error=str(exc))

    def _log(self, served: ServedModel, end: datetime, out: Outcome, secs: float) -> None:
        win = out.windows
        log.info(
            "cycle",
            target=self.target.name,
            seconds=round(secs, 4),
            series=len(win.keys),
            points=win.values.size,
            imputed=round(win.imputed_ratio, 4),
            model_version=served.version,
            end=end.isoformat(),
            read=self.reader.recent.last_read,
            first=round(float(out.values[0, 0]), 6),
            last=round(float(out.values[0, -1]), 6),
        )
