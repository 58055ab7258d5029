"""The daemon: wires source, models, jobs, scheduler and HTTP server; handles signals and shutdown."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from promcast.daemon.build import build_info
from promcast.daemon.clock import first_cycle
from promcast.daemon.cycle.job import CycleResult, ForecastJob
from promcast.daemon.health import health, readiness
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.http.server import HttpServer
from promcast.daemon.logs import get_logger
from promcast.daemon.models.retrain_runner import run_train_process
from promcast.daemon.models.serving import ModelHolder
from promcast.daemon.models.store import ModelStore, StoreError, holdout_maes
from promcast.daemon.settings import Settings, TargetSettings, cron_trigger
from promcast.daemon.sinks.push import make_pusher
from promcast.daemon.sources import Source
from promcast.daemon.sources.sharding import shard_for

__all__ = ["Daemon"]

log = get_logger("promcast.daemon")

# /healthz never calls a target stalled sooner: probes poll every 5-20 s, and a sped-up demo fires every 0.1 s.


class Daemon:
    """Forecasts every target on its step, serves /metrics, /healthz and /readyz, reloads models on SIGHUP."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        targets: list[TargetSettings],
        speed: float = 1.0,
        model_poll_seconds: float | None = None,
    ) -> None:
        self.settings, self.source, self.targets, self.speed = settings, source, targets, speed
        self.registry = CollectorRegistry()
        self.metrics = Metrics(
            self.registry, [t.name for t in targets], clock=lambda: source.now().timestamp(), stamped=speed == 1.0
        )
        self.metrics.register_process(build_info())
        keep = settings.retrain.keep
        self.holders = {t.name: ModelHolder(ModelStore(settings.model_dir, t.name, keep), t) for t in targets}
        self.shard = shard_for(settings)
        self.metrics.shard_info.labels(str(self.shard.index), str(self.shard.count)).set(1)
        self._stop = threading.Event()  # SIGTERM: reaches a first training in a cycle and the retrain job
        self.jobs = {
            t.name: ForecastJob(
                t,
                source,
                self.holders[t.name],
                self.metrics,
                settings.ready_max_age_steps,
                self.shard,
                stop=self._stop,
                train_timeout=settings.train_timeout_seconds,
            )
            for t in targets
        }
        self._retraining: dict[str, threading.Lock] = {t.name: threading.Lock() for t in targets}
        for job in self.jobs.values():
            job.life.on_drift = self.retrain_in_background
        self.pusher = make_pusher(settings.push, self.metrics, targets)  # push.url: forecasts to VictoriaMetrics
        for job in self.jobs.values():
            job.on_published = self.pusher.push if self.pusher is not None else None
        self.model_poll_seconds = model_poll_seconds or settings.model_poll_seconds
        self.server: HttpServer | None = None
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self._started_at = time.monotonic()  # reset by start(): /healthz counts idle time from it until a cycle
        self._reload = threading.Event()
        self._first_cycles: list[threading.Thread] = []  # start()'s cycle at once, one per target
        self._retrains: list[threading.Thread] = []  # drift and own-model retrains: shutdown waits for their child
        self._rejected: dict[str, str] = {}  # target -> the version last refused; polling retries it on SIGHUP only
        # target -> the newest decision report already looked at: those there at start-up are never counted
        self._seen_decisions: dict[str, str] = {}
        self._seen_lock = threading.Lock()  # reload_models runs on the poll job and on SIGHUP: count each once
        for name, holder in self.holders.items():
            self._count_manual(name, holder.store)

    # ---- health ------------------------------------------------------------------------------
    def health(self) -> tuple[bool, list[str]]:
        """/healthz: every target's cycles are attempted (daemon.health)."""
        return health(self.jobs, self.settings.health_max_idle_cycles, self.speed, self._started_at)

    def readiness(self) -> tuple[bool, list[str]]:
        """/readyz: every target serves a fresh forecast (promcast.daemon.health)."""
        return readiness(self.jobs, self.metrics, self.source.now().timestamp())

    # ---- models ------------------------------------------------------------------------------
    def reload_models(self, only_changed: bool = False) -> None:
        """Load each target's current artifact aside, validate it, and swap it in; keep the old one on failure.
        Count the retrains run outside the daemon since the last look (``promcast_retrains_total{reason="manual"}``)."""
        for name, holder in self.holders.items():
            self._count_manual(name, holder.store)
            self._reload_one(name, holder, only_changed)
            served = holder.get()
            for role, mae in holdout_maes(holder.store, served.version if served else None).items():
                self.metrics.holdout_mae.labels(name, role).set(mae)

    def _count_manual(self, name: str, store: ModelStore) -> None:
        """Each decision report written since the last look by a ``promcast train`` the daemon did not start (by
        hand, a systemd timer, a CronJob: trigger "manual") counts once, with a log line. Reports that were there
        when the daemon started are not counted; a dry run writes none."""
        with self._seen_lock:
            try:
                runs = store.decisions()
            except OSError as exc:  # the next poll looks again
                log.warning("decisions_unreadable", target=name, error=str(exc))
                return
            seen = self._seen_decisions.get(name)
            self._seen_decisions[name] = runs[-1] if runs else ""
        if seen is None:
            return
        for run in (r for r in runs if r > seen):
            report = store.decision(run) or {}
            if report.get("trigger", "manual") == "manual":
                self.metrics.retrains.labels(name, "manual").inc()
                log.info("retrain_seen", target=name, run=run, decision=report.get("decision"), trigger="manual")

    def _reload_one(self, name: str, holder: ModelHolder, only_changed: bool) -> None:
        served = holder.get()
        if holder.fixed:  # model: pretrained serves the package's model; the store plays no part
            return
        try:
            version = holder.store.current_version()
        except StoreError as exc:  # not a link: keep serving; the poll stays quiet, SIGHUP says why
            if not only_changed:
                self.metrics.error(name, "model")
                log.error("model_rejected", target=name, version=None, error=str(exc))
            return
        if version is None or (
            only_changed and served is not None and version in (served.version, *served.passed_over)
        ):
            return
        if only_changed and self._rejected.get(name) == version:
            return
        try:
            new = holder.load(version, self.jobs[name].last_window)
        except Exception as exc:  # any bad artifact: refuse it, keep serving the old model
            self._rejected[name] = version
            self.metrics.swaps.labels(name, "rejected").inc()
            self.metrics.error(name, "model")
            log.error("model_rejected", target=name, version=version, error=str(exc))
            return
        self._rejected.pop(name, None)
        holder.swap(new)
        self.metrics.model_fallback.labels(name).set(0)  # `current` itself serves again
        self.metrics.swaps.labels(name, "accepted").inc()
        self.metrics.set_model(name, new.info)
        log.info("model_swapped", target=name, version=new.version, previous=served.version if served else None)

    # ---- running -----------------------------------------------------------------------------
    def run_once(self) -> list[CycleResult]:
        return [job() for job in self.jobs.values()]

    def start(self) -> None:
        self._started_at = time.monotonic()
        self.server = HttpServer(
            self.settings.listen_host,
            self.settings.listen_port,
            self.metrics.exposition,
            self.readiness,
            self.health,
            self.settings.web_config_file,
        )
        self.server.start()
        wall, now = datetime.now(UTC), self.source.now()
        for t in self.targets:
            # Cycles fire settle_seconds after each boundary of the interval on the source's clock, whatever the
            # start time; the source's clock runs ``speed`` times faster than the scheduler's. One more cycle runs
            # at once, so that the first forecast (or the first training) does not wait for a boundary.
            first = first_cycle(now, timedelta(seconds=t.interval), timedelta(seconds=t.settle))
            job = self.jobs[t.name]
            self.scheduler.add_job(
                job.run_exclusive,
                IntervalTrigger(seconds=t.interval / self.speed, start_date=wall + (first - now) / self.speed),
                id=f"forecast:{t.name}",
                name=f"forecast {t.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(t.interval / self.speed / 2)),
            )
        self.scheduler.add_job(
            self.reload_models,
            IntervalTrigger(seconds=self.model_poll_seconds, timezone=UTC),
            kwargs={"only_changed": True},
            id="models:poll",
            max_instances=1,
            coalesce=True,
        )
        for job in self.jobs.values():  # the long-running daemon trains a pretrained-served target's own model
            job.life.on_own_model = lambda name, why: self.retrain_in_background(name, why, "first")
        for t in self.targets:
            if t.retrain_cron and not self.holders[t.name].fixed:
                self.scheduler.add_job(
                    self.retrain,
                    cron_trigger(t.retrain_cron),
                    args=(t.name,),
                    id=f"retrain:{t.name}",
                    name=f"retrain {t.name}",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=60,
                )
        self.scheduler.start()
        # The cycle at once runs in a thread of its own, not as a one-shot job: APScheduler removes a one-shot job
        # after submitting it, and a shutdown that lands in between made its thread die with JobLookupError.
        self._first_cycles = [
            threading.Thread(target=self.jobs[t.name].run_exclusive, name=f"first-forecast-{t.name}", daemon=True)
            for t in self.targets
        ]
        for thread in self._first_cycles:
            thread.start()
        log.info(
            "started",
            listen=f"{self.server.scheme}://{self.settings.listen_host}:{self.server.port}",
            targets=len(self.targets),
            shard_index=self.shard.index,
            shard_count=self.shard.count,
        )

    def retrain(self, target: str, reason: str = "cron") -> int:
        """Retrain ``target`` in a child process (the scheduled job, drift, or the first own model of a target the
        pretrained model serves); the poll then swaps in what it promotes. One at a time per target: a retrain asked
        for while one runs is skipped (exit code -1), and so is one of a ``model: pretrained`` target (-2)."""
        if self.holders[target].fixed:
            log.info("retrain_skipped", target=target, reason=reason, cause="model: pretrained is never trained")
            return -2
        if self._stop.is_set():  # asked for by a cycle that ended as the daemon began stopping
            log.info("retrain_skipped", target=target, reason=reason, cause="the daemon is stopping")
            return -1
        lock = self._retraining[target]
        if not lock.acquire(blocking=False):
            log.info("retrain_skipped", target=target, reason=reason, cause="a retrain of this target is running")
            return -1
        try:
            self.metrics.retrains.labels(target, reason).inc()
            code = run_train_process(self.settings, target, self._stop, reason)
        finally:
            lock.release()
        if code != 0:
            self.metrics.error(target, "train")
        return code

    def retrain_in_background(self, target: str, why: str, reason: str = "drift") -> threading.Thread:
        """A drift retrain, or the first own model's training: started now on its own thread, so that the cycle
        that asked for it goes on."""
        thread = threading.Thread(target=self.retrain, args=(target, reason), name=f"retrain-{reason}-{target}")
        thread.daemon = True
        self._retrains = [t for t in self._retrains if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _on_event(self, event: JobExecutionEvent) -> None:
        kind, _, target = event.job_id.partition(":")
        if kind == "retrain" and event.code == EVENT_JOB_MAX_INSTANCES:
            log.debug("retrain_still_running", target=target)  # a slow retrain skips its next firing: no fault
            return
        if kind == "forecast" and event.code == EVENT_JOB_MAX_INSTANCES and self.jobs[target].life.training:
            log.debug("first_training_still_running", target=target)  # nothing to forecast until it ends: no fault
            return
        if target in self.holders:
            self.metrics.error(target, "scheduler")
        log.warning("scheduler_event", job=event.job_id, code=event.code, error=repr(getattr(event, "exception", None)))

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def request_reload(self, *_: object) -> None:
        self._reload.set()

    def serve_forever(self) -> None:
        """Block until SIGTERM or SIGINT; SIGHUP reloads the model artifacts from disk."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            (self.request_reload if signum == signal.SIGHUP else self.request_stop)()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, on_signal)
        self.start()
        try:
            while not self._stop.is_set():
                if self._reload.wait(0.2):
                    self._reload.clear()
                    log.info("reload_requested")
                    self.reload_models()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        log.info("stopping")
        self._stop.set()  # a first training's child and a retrain's are stopped; no cycle publishes any more
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)  # a cycle in flight finishes; an artifact write is never cut
        for thread in self._first_cycles:  # so does the cycle at once
            thread.join()
        for thread in self._retrains:  # each stops its `promcast train` child, which must not outlive the daemon
            thread.join()
        if self.server is not None:
            self.server.stop()
        log.info("stopped")
