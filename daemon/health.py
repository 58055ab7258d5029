"""/healthz and /readyz: whether every target's cycles are attempted, and whether each serves a fresh forecast."""

from __future__ import annotations

import time

from promcast.daemon.cycle.job import ForecastJob
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.settings import TargetSettings

__all__ = ["MIN_IDLE_SECONDS", "health", "readiness"]

MIN_IDLE_SECONDS = 5.0  # /healthz never calls a target idle sooner, whatever its interval


def health(
    targets: list[TargetSettings], jobs: dict[str, ForecastJob], max_idle_cycles: float, speed: float, since: float
) -> tuple[bool, list[str]]:
    """Healthy while every target's cycles are attempted: one started within ``health_max_idle_cycles``
    intervals (and never less than MIN_IDLE_SECONDS), or a first training runs within its timeout. ``since`` is
    the daemon's start (time.monotonic()), the mark before a target's first cycle."""
    problems = []
    now = time.monotonic()
    for t in targets:
        job = jobs[t.name]
        limits = job.life.training_limits
        if limits is not None and limits.remaining() > 0:
            continue
        progress = job.progress_at
        idle = now - (progress if progress is not None else since)
        allowed = max(max_idle_cycles * t.interval / speed, MIN_IDLE_SECONDS)
        if idle > allowed:
            why = f"{t.name}: no cycle started for {idle:.0f}s (limit {allowed:.0f}s)"
            if limits is not None:
                why += f"; the first training has run past train_timeout_seconds ({limits.timeout:g} s)"
            problems.append(why)
    return not problems, problems


def readiness(
    targets: list[TargetSettings], jobs: dict[str, ForecastJob], metrics: Metrics, now: float
) -> tuple[bool, list[str]]:
    """Ready while every target has a model and a fresh forecast; otherwise each target's reason."""
    problems = []
    forecasts, _ = metrics.snapshot()
    for t in targets:
        if jobs[t.name].holder.get() is None:
            problems.append(f"{t.name}: {_no_model(jobs[t.name])}")
            continue
        fc = forecasts.get(t.name)
        if fc is None:
            problems.append(f"{t.name}: no forecast yet")
        elif not fc.fresh(now):
            problems.append(f"{t.name}: forecast is {now - fc.computed_at:.0f}s old (limit {fc.max_age:.0f}s)")
    return not problems, problems


def _no_model(job: ForecastJob) -> str:
    limits = job.life.training_limits
    if limits is not None:
        ran = time.monotonic() - limits.started
        return f"no model: training the first one ({ran:.0f}s of train_timeout_seconds {limits.timeout:g})"
    return f"no model: {job.life.error}" if job.life.error else "no model"
