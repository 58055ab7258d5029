"""/healthz and /readyz: whether every target's cycles are attempted, and whether each serves a fresh forecast."""

from __future__ import annotations

import time

from promcast.daemon.cycle.job import ForecastJob
from promcast.daemon.http.metrics import Metrics

__all__ = ["MIN_IDLE_SECONDS", "NOTHING_TO_FORECAST", "health", "readiness"]

NOTHING_TO_FORECAST = ("no_data", "query_rejected")  # the data's state, not the daemon's: a restart does not help
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
    """Ready while every target that can forecast serves a fresh forecast. A target with nothing to forecast (its
    query matches no usable series, or the source refuses it) is listed with its reason but does not count, unless
    it is ``required``. The lines: each target that is not serving, and why."""
    problems, ok = [], True
    forecasts, _ = metrics.snapshot()
    for name, job in jobs.items():
        fc = forecasts.get(name)
        if fc is not None and fc.fresh(now):
            continue
        if job.state in NOTHING_TO_FORECAST and not job.target.required:
            problems.append(f"{name}: not counted ({job.state}, required: false): {job.why}")
            continue
        ok = False
        if job.holder.get() is None:
            problems.append(f"{name}: {job.life.why_none()}")
        elif fc is None:
            problems.append(f"{name}: {job.why or 'no forecast yet'}")
        else:
            why = f"; last cycle: {job.why}" if job.why else ""
            problems.append(f"{name}: forecast is {now - fc.computed_at:.0f}s old (limit {fc.max_age:.0f}s){why}")
    return ok, problems
