"""A target's model over its life: the first model (the store's, the pretrained one, or one trained from history),
the target's own model trained behind the pretrained one, and a retrain when the live skill drifts down.

The forecast cycle asks ``ensure`` for the model to serve and reports its live skill to ``check_drift``; the
retrains themselves run in the daemon's background (``on_own_model``, ``on_drift``) through the promotion rule.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import get_logger
from promcast.daemon.models.serving import LOAD_ERRORS, ModelHolder, ServedModel, pretrained_for
from promcast.daemon.models.store import StoreError, log_pin
from promcast.daemon.models.training import (
    TrainingFailed,
    TrainingLimits,
    TrainingStopped,
    longest_history,
    train_in_child,
)
from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources import Source
from promcast.daemon.sources.sharding import Shard
from promcast.daemon.types import QueryRejected, SourceUnavailable
from promcast.forecaster import ArtifactError
from promcast.forecaster.extras import missing_torch, torch_available

__all__ = ["ModelLife"]

log = get_logger("promcast.job")

_TRAINING = "cannot train the first model"
Retrain = Callable[[str, str], object]  # (target, reason): starts a retrain in the background


class ModelLife:
    """One target's served model: loads or makes the first one, and asks for the retrains it needs."""

    def __init__(
        self,
        target: TargetSettings,
        source: Source,
        holder: ModelHolder,
        metrics: Metrics,
        shard: Shard,
        stop: threading.Event,
        train_timeout: float = math.inf,
    ) -> None:
        self.target, self.source, self.holder, self.metrics = target, source, holder, metrics
        self.shard, self.stop, self.train_timeout = shard, stop, train_timeout
        self.training_limits: TrainingLimits | None = None  # set while the first model trains
        self.trained_at: float | None = None  # time.monotonic() when the first training ended
        self.error: str | None = None  # why the last ``ensure`` found no model, with its cause
        self.no_data = False  # that cause was the data: no series to train on, or a query the source refuses
        self.on_drift: Retrain | None = None  # the daemon's: a retrain when the skill drifts down
        self.on_own_model: Retrain | None = None  # the daemon's: trains the target's own model
        self._own_asked: datetime | None = None  # when (source's clock) on_own_model was last called
        self._low_skill = 0  # consecutive cycles with the skill under drift_retrain.skill_below
        self._last_drift: datetime | None = None  # when (on the source's clock) the last drift retrain started

    @property
    def training(self) -> bool:
        """True while the first model trains: the cycle is long on purpose."""
        return self.training_limits is not None

    def why_none(self) -> str:
        """Why no model serves: a first training under way, the last failure's cause, or nothing known."""
        limits = self.training_limits
        if limits is not None:
            ran = time.monotonic() - limits.started
            return f"no model: training the first one ({ran:.0f}s of train_timeout_seconds {limits.timeout:g})"
        return f"no model: {self.error}" if self.error else "no model"

    def ensure(self, end: datetime) -> ServedModel | None:
        """The served model; on first start, load the store's current one, install the pretrained one, or train
        one from history (minutes). None, with ``error`` set, where there is none."""
        served = self.holder.get()
        if served is not None:
            return served
        name = self.target.name
        doing = "cannot load the current model"
        try:
            if self.holder.fixed:
                doing = "cannot load the pretrained model"
            elif not self.holder.store.has_current():  # a broken `current` is no "no model": never train over it
                doing = _TRAINING
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
            self.metrics.error(name, _stage(exc, doing))
            self.error = f"{doing}: {type(exc).__name__}: {exc}"
            self.no_data = isinstance(exc, QueryRejected) or (doing == _TRAINING and isinstance(exc, ValueError))
            log.error("model_unavailable", target=name, error=self.error)
            return None
        self.error, self.no_data = None, False
        self.holder.swap(served)
        self.metrics.set_model(name, served.info)
        log.info("model_loaded", target=name, version=served.version, model=served.info.model)
        pin = None if self.holder.fixed else self.holder.store.pin()
        if pin is not None:  # the operator's choice: retrains still train and report, and promote nothing over it
            log_pin(name, pin, "every automatic promotion, until promcast models unpin")
        return served

    def ask_own_model(self, served: ServedModel) -> None:
        """While the pretrained model serves a target that has a network of its own to train, ask for that
        training (``on_own_model``: the daemon's retrain in the background, promoted only if it beats the
        pretrained champion): at once, then every ``own_model_retry_seconds`` on the source's clock."""
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

    def check_drift(self, skill: float | None) -> None:
        """Start a retrain (``on_drift``) once the skill has stayed under the threshold for ``cycles`` cycles, at
        most once per cool-down; the promotion rule then decides as for any retrain."""
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

    def _train_first(self, end: datetime) -> None:
        """Train the first model in a child; the daemon's stop or train_timeout_seconds ends it (history read too)."""
        name = self.target.name
        log.info("training_first_model", target=name, history=str(self.target.history), model=self.target.model)
        t0 = time.perf_counter()
        store = self.holder.store
        self.training_limits = limits = TrainingLimits(self.stop, self.train_timeout)
        try:
            history = longest_history(self.source, self.target, end, self.shard.select, limits=limits)
            version, validation = train_in_child(store.dir.parent, store.keep, self.target, history, limits=limits)
        finally:
            self.training_limits = None
            # The training was this cycle's progress: /healthz counts from its end, not from the cycle's start.
            self.trained_at = time.monotonic()
        log.info(
            "trained", target=name, version=version, seconds=round(time.perf_counter() - t0, 2), validation=validation
        )


def _stage(exc: Exception, doing: str) -> str:
    """The error stage ``ensure`` counts a failure under: each failure once, under its own stage."""
    if isinstance(exc, SourceUnavailable):
        return "query"
    training = doing == _TRAINING and isinstance(exc, ValueError | TrainingFailed)
    return "train" if training else "model"
