"""/healthz and /readyz: whether every target's cycles are attempted, and whether each serves a fresh forecast."""

from __future__ import annotations

import time

from promcast.daemon.cycle.job import ForecastJob
from promcast.daemon.http.metrics import Metrics

__all__ = ["MIN_IDLE_SECONDS", "health", "readiness"]

MIN_IDLE_SECONDS = 5.0  # /healthz never calls a target idle sooner, whatever its interval


def health(jobs: dict[str, ForecastJob], max_idle_cycles: float, speed: float, since: float) -> tuple[bool, list[str]]:
    """Healthy while every target's cycles are attempted: one started within ``health_max_idle_cycles``
    intervals (and never less than MIN_IDLE_SECONDS), or a first training runs within its timeout. ``since`` is
    the daemon's start (time.monotonic()), the mark before a target's first cycle."""
    problems = []
    now = time.monotonic()
    for job in jobs.values():
        t, limits = job.target, job.life.training_limits
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


def readiness(jobs: dict[str, ForecastJob], metrics: Metrics, now: float) -> tuple[bool, list[str]]:
    """Ready while every target has a model and a fresh forecast; otherwise each target's reason."""
    problems = []
    forecasts, _ = metrics.snapshot()
    for name, job in jobs.items():
        if job.holder.get() is None:
            problems.append(f"{name}: {job.life.why_none()}")
            continue
        fc = forecasts.get(name)
        if fc is None:
            problems.append(f"{name}: no forecast yet")
        elif not fc.fresh(now):
            problems.append(f"{name}: forecast is {now - fc.computed_at:.0f}s old (limit {fc.max_age:.0f}s)")
    return not problems, problems
