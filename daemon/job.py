"""One target's forecast cycle: query, window, one batched inference, publish. It owns its error boundary."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from forecaster import ArtifactError
from forecaster.bursts import BurstDetector, BurstParams
from forecaster.extras import missing_torch, torch_available

from .autoscale import recommend
from .bands import clip_at_floor, widen
from .clock import origin
from .guard import MODEL, Guard, GuardParams, fallback_forecasts
from .heap import release_free_memory
from .logs import get_logger
from .merges import report_merges
from .metrics import Metrics, TargetForecast
from .quality import QualityTracker
from .recent import RecentData
from .serving import LOAD_ERRORS, ModelHolder, ServedModel, pretrained_for
from .settings import TargetSettings
from .sharding import Shard
from .sources import Source
from .store import StoreError
from .training import TrainingFailed, TrainingLimits, TrainingStopped, longest_history, train_in_child
from .types import SeriesKey, SourceUnavailable
from .windows import Windows, build_windows

__all__ = ["CycleResult", "ForecastJob"]

log = get_logger("promcast.job")


@dataclass(frozen=True)
class _Outcome:
    """A cycle's forecasts before they are published."""

    windows: Windows
    values: np.ndarray  # (S, H) published: the model's, or a fallback's for the series the guard moved
    bounds: dict[float, tuple[np.ndarray, np.ndarray]]
    model: np.ndarray  # (S, H) the model's own forecasts, scored whatever is published
    fallbacks: dict[str, np.ndarray]  # the guard's fallbacks' forecasts (S, H) by name
    sources: list[str]  # per series: "model" or the fallback published


@dataclass
class CycleResult:
    target: str
    ok: bool
    end: datetime | None = None
    keys: list[SeriesKey] = field(default_factory=list)
    forecasts: np.ndarray | None = None  # (S, horizon)
    version: str | None = None
    error: str | None = None


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
        self.shard = shard  # only this replica's series are forecast, trained on and tracked
        self.stop = stop or threading.Event()  # the daemon's: set on SIGTERM, it ends a first training at once
        self.train_timeout = train_timeout  # train_timeout_seconds
        self.training_limits: TrainingLimits | None = None  # set while the first model trains
        self.model_error: str | None = None  # why the last ensure_model found no model, with its cause
        self.started_at: float | None = None  # time.monotonic() when the last cycle started: /healthz reads it
        self.target, self.source, self.holder, self.metrics = target, source, holder, metrics
        self.max_age = max_age_steps * target.interval
        self._previous: set[SeriesKey] = set()
        self.last_window: np.ndarray | None = None  # the first series' latest window, a probe for new models
        self._running = threading.Lock()
        span = target.step * (target.input_length + 2 * target.max_gap + 2)
        self.recent = RecentData(source, target, span, shard.select)  # reads only what is new each cycle
        self.grid = target.input_length + 2 * target.max_gap + 3  # the span's points: an input and its lag and gaps
        g = target.guard
        self.guard = Guard(target.horizon, GuardParams(g.window, g.margin, g.patience)) if g.enabled else None
        b = target.bursts
        self.bursts = BurstDetector(BurstParams(b.threshold, b.persistence, b.spike)) if b.enabled else None
        self.quality = QualityTracker(
            pd.Timedelta(target.step),
            target.horizon,
            tuple(target.levels),
            target.quality_window,
            target.aci_gamma,
            self.guard,
            self.bursts,
        )
        self.on_drift: Callable[[str, str], object] | None = None  # the daemon's: starts a retrain in the background
        self.on_own_model: Callable[[str, str], object] | None = None  # the daemon's too: trains the target's own
        self._own_asked: datetime | None = None  # when (source's clock) on_own_model was last called
        self._low_skill = 0  # consecutive cycles with the skill under drift_retrain.skill_below
        self._last_drift: datetime | None = None  # when (on the source's clock) the last drift retrain started

    @property
    def training(self) -> bool:
        """True while the first model trains: the cycle is long on purpose."""
        return self.training_limits is not None

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
            return CycleResult(self.target.name, False, error="stopping")
        self.started_at, t0 = time.monotonic(), time.perf_counter()
        try:
            result = self.cycle()
            if not result.ok and self.holder.get() is None and self.model_error:
                result.error = f"no model: {self.model_error}"  # the cause, not just the symptom
        except Exception as exc:  # the boundary: a bug in one cycle must never stop the next
            log.exception("cycle_failed", target=self.target.name)
            self.metrics.error(self.target.name, "cycle")
            result = CycleResult(self.target.name, False, error=repr(exc))
        self.metrics.cycle.labels(self.target.name).observe(time.perf_counter() - t0)
        release_free_memory()  # the cycle's garbage goes back to the OS, not into a high-water mark
        return result

    def cycle(self) -> CycleResult:
        name, step = self.target.name, self.target.step
        served = self.ensure_model(origin(self.source.now(), step))  # the first start may train for minutes
        if served is None:
            return CycleResult(name, False, None, error="no model")
        self._train_own(served)
        # The end is taken after any training, and a cycle that took past the next step boundary is run again
        # on fresh data: a forecast whose origin is a step old would have its first step in the past.
        for _ in range(2):
            t0 = time.perf_counter()
            end = origin(self.source.now(), step)
            outcome = self._forecast(served, end)
            if isinstance(outcome, CycleResult):
                return outcome
            if self.stop.is_set():  # the daemon began stopping during the cycle: publish nothing more
                return CycleResult(name, False, end, error="stopping")
            if self.source.now() - end < step:
                self._publish(end, outcome)
                self._log(served, end, outcome, time.perf_counter() - t0)
                return CycleResult(name, True, end, outcome.windows.keys, outcome.values, served.version)
            log.warning("cycle_late", target=name, end=end.isoformat(), seconds=round(time.perf_counter() - t0, 3))
        self.metrics.error(name, "late")
        return CycleResult(name, False, end, error="every forecast was a step old before it could be published")

    def _forecast(self, served: ServedModel, end: datetime) -> _Outcome | CycleResult:
        """Read, window and predict at ``end``: the forecasts to publish, or the failed cycle's result."""
        name = self.target.name
        try:
            data = self.recent.fetch(end)
            report_merges(self.source, name, self.metrics)  # series summed by drop_labels: gauge, a log per change
        except SourceUnavailable as exc:
            self.metrics.error(name, "query")
            log.warning("query_failed", target=name, error=str(exc))
            return CycleResult(name, False, end, error=str(exc))
        self.metrics.shard_series.labels(name).set(len(data))
        win = build_windows(data, end, self.target.step, self.target.input_length, self.target.max_gap, self.grid)
        for key, reason in win.skipped:
            self.metrics.error(name, "input")
            log.warning("series_skipped", target=name, series=dict(key), reason=reason)
        self._count_vanished(set(data))
        if not win.keys:
            self.metrics.publish(name, None)
            self.metrics.series.labels(name).set(0)
            log.warning("no_usable_series", target=name, returned=len(data))
            return CycleResult(name, False, end, error="no usable series")
        for switch in self.quality.observe(data):
            self.metrics.fallback_switches.labels(name).inc()
            log.warning(
                "fallback_switch",
                target=name,
                series=dict(switch.key),
                source=switch.source,
                previous=switch.previous,
                model_mae=round(switch.model_mae, 6),
                fallback_mae=round(switch.fallback_mae, 6),
            )
        for key, score in self.quality.take_onsets():
            self.metrics.bursts.labels(name).inc()
            log.warning("burst", target=name, series=dict(key), score=round(score, 3))
        if self.guard is not None:
            self.guard.forget(set(data))
        if self.bursts is not None:
            self.bursts.forget(set(data))
        quality = self.quality.snapshot()
        self.metrics.set_quality(name, quality)
        self._check_drift(quality.skill)
        try:
            values, bounds = self._predict(served, win.values)
        except ValueError as exc:  # one series the model cannot forecast costs that series, not the target
            kept, values, bounds = self._predict_each(served, win)
            if not kept:
                return CycleResult(name, False, end, error=str(exc))
            win = win.subset(kept)
        bounds = widen(values, bounds, win.long_gap, self.target.gap_interval_factor)
        clip = self.target.clip_negative  # a series never negative in its window is not forecast below 0
        if clip:
            values, bounds = clip_at_floor(win.values, values, bounds)
        model, fallbacks, sources = values, {}, [MODEL] * len(win.keys)
        if self.guard is not None:  # the fallbacks are computed, kept and scored only for the guard
            fallbacks = fallback_forecasts(win.values, self.target.horizon, self.target.day_steps)
            levels = self.quality.effective_levels()
            values, bounds, sources = self.guard.apply(win.keys, values, bounds, fallbacks, levels)
            if clip and any(src != MODEL for src in sources):  # a fallback's interval may reach below 0
                values, bounds = clip_at_floor(win.values, values, bounds)
        self._report_gaps(win, end)
        return _Outcome(win, values, bounds, model, fallbacks, sources)

    def _predict(
        self, served: ServedModel, windows: np.ndarray
    ) -> tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]]:
        """Point forecasts (S, horizon) and bounds per nominal level, at the levels adapted online.

        The Forecaster raises ValueError instead of returning a non-finite value. A model made before the gate reads
        fewer points than the target's input (its window alone): it gets the last that many."""
        f = served.forecaster
        windows = windows[:, -f.input_length :]
        if f.calibration is None or not self.target.levels:
            values, bounds = f.predict(windows), {}
        else:
            effective = self.quality.effective_levels()  # strictly increasing in the nominal order: distinct bands
            values, by_effective = f.predict_interval(windows, tuple(effective.values()))
            bounds = {nominal: by_effective[eff] for nominal, eff in effective.items()}
        return values, bounds

    def _predict_each(
        self, served: ServedModel, win: Windows
    ) -> tuple[list[int], np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]]:
        """After a batch failed: each series on its own, so that one series the model cannot forecast (a window
        far outside its training scale) costs that series its forecast, not every series of the target."""
        kept: list[int] = []
        parts: list[tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]]] = []
        for i, key in enumerate(win.keys):
            try:
                parts.append(self._predict(served, win.values[i : i + 1]))
            except ValueError as exc:
                self.metrics.error(self.target.name, "predict")
                log.error("predict_failed", target=self.target.name, series=dict(key), error=str(exc))
                continue
            kept.append(i)
        if not kept:
            return [], np.empty((0, 0)), {}
        values = np.concatenate([v for v, _ in parts])
        bounds = {
            level: (np.concatenate([b[level][0] for _, b in parts]), np.concatenate([b[level][1] for _, b in parts]))
            for level in parts[0][1]
        }
        return kept, values, bounds

    def _replicas(
        self, values: np.ndarray, bounds: dict[float, tuple[np.ndarray, np.ndarray]], actual: np.ndarray
    ) -> np.ndarray | None:
        """daemon.autoscale.recommend on the published forecast's upper bound at replicas_level (default: the
        widest) and the last actual values; None without capacity_per_replica."""
        scaling = self.target.scaling
        if scaling is None:
            return None
        level = self.target.replicas_level or (max(bounds) if bounds else None)
        return recommend(values if level is None else bounds[level][1], actual, scaling)

    def _check_drift(self, skill: float | None) -> None:
        """Start a retrain (``on_drift``) once the skill has stayed under the threshold for ``cycles`` cycles, at
        most once per cool-down; the retrain gate then decides as for any retrain."""
        d = self.target.drift_retrain
        if not d.enabled or self.on_drift is None:
            return
        self._low_skill = self._low_skill + 1 if skill is not None and skill < d.skill_below else 0
        if self._low_skill < d.cycles:
            return
        now = self.source.now()  # the cool-down runs on the source's clock, as the cycles do (a demo's is sped up)
        if self._last_drift is not None and now - self._last_drift < timedelta(seconds=d.cooldown_seconds):
            return
        self._last_drift, self._low_skill = now, 0
        why = f"skill {skill:.3f} under {d.skill_below:g} for {d.cycles} cycles"
        log.warning("drift_retrain", target=self.target.name, reason=why)
        self.on_drift(self.target.name, why)

    def _count_vanished(self, present: set[SeriesKey]) -> None:
        gone = self._previous - present
        if gone:
            self.metrics.error(self.target.name, "vanished", len(gone))
            log.warning("series_vanished", target=self.target.name, count=len(gone), series=[dict(k) for k in gone])
        self._previous = present

    def _report_gaps(self, win: Windows, end: datetime) -> None:
        """Gauges and a log line for the windows that bridged an outage and the series whose samples lag."""
        name = self.target.name
        bridged, lagging = int(win.long_gap.sum()), int(np.count_nonzero(win.origins < pd.Timestamp(end).value))
        self.metrics.gap_series.labels(name).set(bridged)
        self.metrics.lagging_series.labels(name).set(lagging)
        if bridged:
            log.warning(
                "gap_bridged",
                target=name,
                series=bridged,
                imputed=round(win.imputed_ratio, 4),
                example=dict(win.keys[int(np.argmax(win.long_gap))]),
                policy=f"filled by interpolation; interval widened x{self.target.gap_interval_factor:g}",
            )

    def _publish(self, end: datetime, out: _Outcome) -> None:
        name, win = self.target.name, out.windows
        now = self.source.now().timestamp()
        replicas = self._replicas(out.values, out.bounds, win.values[:, -1])
        burst_score, burst = self.bursts.state(win.keys) if self.bursts is not None else (None, None)
        origins = win.origins / 1e9
        snapshot = TargetForecast(
            now,
            end.timestamp(),
            tuple(win.keys),
            out.values,
            self.max_age,
            out.bounds,
            replicas,
            origins,
            tuple(out.sources),
            burst_score,
            burst,
        )
        self.last_window = win.values[0]
        self.quality.record(
            pd.Timestamp(end), win.keys, out.model, win.values[:, -1], out.bounds, win.origins, out.fallbacks
        )
        self.metrics.fallback_series.labels(name).set(sum(src != MODEL for src in out.sources))
        self.metrics.publish(name, snapshot)
        self.metrics.last_success.labels(name).set(now)
        self.metrics.imputed.labels(name).set(win.imputed_ratio)
        self.metrics.series.labels(name).set(len(win.keys))

    def _log(self, served: ServedModel, end: datetime, out: _Outcome, secs: float) -> None:
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
            read=self.recent.last_read,
            first=round(float(out.values[0, 0]), 6),
            last=round(float(out.values[0, -1]), 6),
        )

    def ensure_model(self, end: datetime) -> ServedModel | None:
        """The served model; on first start, load the store's current one or train one from history."""
        served = self.holder.get()
        if served is not None:
            return served
        name = self.target.name
        doing = "cannot load the current model"
        try:
            if self.holder.fixed:
                doing = "cannot load the pretrained model"
            elif not self.holder.store.has_current():  # a broken `current` is no "no model": never train over it
                doing = "cannot train the first model"
                if not self._install_pretrained():
                    self._train_first(end)
                doing = "cannot load the first model"
            if self.stop.is_set():
                return None  # trained just before the stop: it is in the store for the next start
            served = self.holder.load_serving(self.metrics)  # `current`, else the newest older version that loads
        except TrainingStopped:
            log.info("training_stopped", target=name)
            return None
        except (StoreError, ArtifactError, SourceUnavailable, TrainingFailed, ValueError, OSError) as exc:
            stage = "query" if isinstance(exc, SourceUnavailable) else "model"
            self.metrics.error(name, stage)
            self.model_error = f"{doing}: {type(exc).__name__}: {exc}"
            log.error("model_unavailable", target=name, error=self.model_error)
            return None
        self.model_error = None
        self.holder.swap(served)
        self.metrics.set_model(name, served.info)
        log.info("model_loaded", target=name, version=served.version, model=served.info.model)
        return served

    def _install_pretrained(self) -> bool:
        """With ``first_model: pretrained``, put the package's pretrained model into the empty store as its first
        version, so that it serves from this cycle on; False where the target trains first (the setting, or a
        window or horizon the pretrained model lacks, which is logged)."""
        if self.target.first_model != "pretrained":
            return False
        try:
            pretrained = pretrained_for(self.target)
        except LOAD_ERRORS as exc:
            log.info("pretrained_unfit", target=self.target.name, reason=str(exc), then="training the first model")
            return False
        version = self.holder.store.install(pretrained.path)
        log.info("pretrained_installed", target=self.target.name, version=version, pretrained=pretrained.version)
        return True

    def _train_own(self, served: ServedModel) -> None:
        """While the pretrained model serves a target that has a network of its own to train, ask for that
        training (``on_own_model``: the daemon's retrain in the background, whose gate promotes it only if it beats
        the pretrained champion): at once, then every ``own_model_retry_seconds`` on the source's clock."""
        if self.on_own_model is None or self.holder.fixed or not served.forecaster.pretrained:
            return
        now = self.source.now()
        retry = timedelta(seconds=self.target.own_model_retry_seconds)
        if self._own_asked is not None and now - self._own_asked < retry:
            return
        self._own_asked = now
        name = self.target.name
        if not torch_available():  # a serving install: the pretrained model serves for good, said once per retry
            log.warning("own_model_unavailable", target=name, reason=missing_torch("training the target's own model"))
            return
        log.info("own_model_training", target=name, served=served.version, model=self.target.model)
        self.on_own_model(name, "the pretrained model serves this target")

    def _train_first(self, end: datetime) -> None:
        """Train the first model in a child; the daemon's stop or train_timeout_seconds ends it (history read too)."""
        name = self.target.name
        log.info("training_first_model", target=name, history=str(self.target.history), model=self.target.model)
        t0 = time.perf_counter()
        store = self.holder.store
        self.training_limits = limits = TrainingLimits(self.stop, self.train_timeout)
        try:
            history = longest_history(self.source, self.target, end, self.shard.select, limits=limits)
            try:
                version, validation = train_in_child(store.dir.parent, store.keep, self.target, history, limits=limits)
            except (ValueError, TrainingFailed):
                self.metrics.error(name, "train")
                raise
        finally:
            self.training_limits = None
            # The training was this cycle's progress: /healthz counts from its end, not from the cycle's start
            # minutes ago, until the next cycle starts (a fraction of a second later).
            self.started_at = time.monotonic()
        log.info(
            "trained", target=name, version=version, seconds=round(time.perf_counter() - t0, 2), validation=validation
        )
