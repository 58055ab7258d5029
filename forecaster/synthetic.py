"""Seeded synthetic workloads: a smooth diurnal cycle, a bursty one with spikes and level shifts, three
regime changes (a collapse to near zero, a drift, an on/off load) that break with the past at ``change``, and
``mixed``, a random composition of such parts that gives a different shape for every seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import StepLike

__all__ = ["REGIME_CHANGES", "WORKLOADS", "bursty", "collapse", "diurnal", "drift", "make_workload", "mixed", "onoff"]


def _index(n: int, step: pd.Timedelta, end: pd.Timestamp | None) -> pd.DatetimeIndex:
    if end is None:
        return pd.date_range("2024-01-01", periods=n, freq=step)
    return pd.date_range(end=end, periods=n, freq=step)


def diurnal(
    n: int,
    step: StepLike = "1min",
    seed: int = 0,
    level: float = 50.0,
    amplitude: float = 20.0,
    noise: float = 1.5,
    end: pd.Timestamp | None = None,
) -> pd.Series:
    """CPU-like load: a daily sine, a weaker weekly swing, a 12-hour harmonic and Gaussian noise."""
    step = pd.Timedelta(step)
    rng = np.random.default_rng(seed)
    index = _index(n, step, end)
    t = (index.as_unit("ns").asi8 / 1e9).astype(np.float64)
    day, week = 86_400.0, 7 * 86_400.0
    phase = rng.uniform(0, 2 * np.pi)
    values = (
        level
        + amplitude * np.sin(2 * np.pi * t / day + phase)
        + 0.3 * amplitude * np.sin(4 * np.pi * t / day + 2 * phase)
        + 0.2 * amplitude * np.sin(2 * np.pi * t / week)
        + rng.normal(0.0, noise, n)
    )
    return pd.Series(values, index=index, name="value")


def bursty(
    n: int,
    step: StepLike = "1min",
    seed: int = 0,
    level: float = 200.0,
    end: pd.Timestamp | None = None,
) -> pd.Series:
    """Requests-per-second-like load: a daily cycle, Poisson noise, decaying spikes and sudden level shifts."""
    step = pd.Timedelta(step)
    rng = np.random.default_rng(seed)
    base = diurnal(n, step, seed, level=level, amplitude=0.4 * level, noise=0.0, end=end)
    shifts = np.cumsum(np.where(rng.random(n) < 2e-4, rng.normal(0.0, 0.25 * level, n), 0.0))
    spikes = np.zeros(n)
    starts = np.flatnonzero(rng.random(n) < 2e-3)
    for s in starts:  # each burst decays over about ten steps
        length = min(30, n - int(s))
        spikes[s : s + length] += rng.uniform(0.5, 2.0) * level * np.exp(-np.arange(length) / 10.0)
    rate = np.clip(base.to_numpy() + shifts + spikes, 1.0, None)
    return pd.Series(rng.poisson(rate).astype(np.float64), index=base.index, name="value")


def collapse(
    n: int, step: StepLike = "5min", seed: int = 0, change: float = 0.8, end: pd.Timestamp | None = None
) -> pd.Series:
    """A diurnal CPU load that collapses to about 1 % of its level (a service drained) at ``change`` of the way."""
    s = diurnal(n, step, seed, end=end)
    at = int(n * change)
    rng = np.random.default_rng(seed + 1)
    s.iloc[at:] = np.abs(0.5 + rng.normal(0.0, 0.05, n - at))
    return s


def drift(
    n: int, step: StepLike = "5min", seed: int = 0, change: float = 0.8, end: pd.Timestamp | None = None
) -> pd.Series:
    """A diurnal load whose level climbs steadily from ``change`` on: by the end it is 60 % above its past."""
    s = diurnal(n, step, seed, end=end)
    at = int(n * change)
    s.iloc[at:] += np.linspace(0.0, 30.0, n - at)
    return s


def onoff(
    n: int, step: StepLike = "5min", seed: int = 0, change: float = 0.8, end: pd.Timestamp | None = None
) -> pd.Series:
    """A batch VM: busy (about 95 %) and idle (about 2 %) spells of random length, busier before ``change``
    (spells of about 4 hours each) than after (idle spells three times as long)."""
    step = pd.Timedelta(step)
    rng = np.random.default_rng(seed)
    index = _index(n, step, end)
    spell = max(1, round(pd.Timedelta(hours=4) / step))
    at = int(n * change)
    values, t, busy = np.empty(n), 0, True
    while t < n:
        mean = spell if busy or t < at else 3 * spell
        length = max(1, int(rng.exponential(mean)))
        values[t : t + length] = (95.0 if busy else 2.0) + rng.normal(0.0, 1.0, len(values[t : t + length]))
        t, busy = t + length, not busy
    return pd.Series(np.clip(values, 0.0, None), index=index, name="value")


def mixed(n: int, step: StepLike = "5min", seed: int = 0, end: pd.Timestamp | None = None) -> pd.Series:
    """A random workload drawn from a grammar of parts, so that many seeds give many shapes (after Chronos's
    KernelSynth): cycles at the calendar periods that fit the step (a day, a week, 12 hours, an hour), each a sine,
    a peaked pulse or a square wave of random phase and weight, each kept with probability 0.6; a linear trend
    (0.4); AR(1) noise of random memory and size (always); level shifts (0.3); decaying spikes (0.3); on/off
    gating (0.15); a floor that clips the lowest values (0.3). Scaled to a level of 50 and a spread of 10, at
    least 0."""
    step = pd.Timedelta(step)
    rng = np.random.default_rng(seed)
    index = _index(n, step, end)
    t = np.arange(n, dtype=np.float64)
    v = np.zeros(n)
    for period in (86_400.0, 7 * 86_400.0, 43_200.0, 3_600.0):
        p = period / step.total_seconds()
        if p < 4 or p > 4 * n or rng.random() < 0.4:
            continue
        shape, x = int(rng.integers(3)), 2 * np.pi * t / p + rng.uniform(0, 2 * np.pi)
        if shape == 0:
            part = np.sin(x)
        elif shape == 1:  # a peak once a period
            part = 2 * np.abs(np.sin(x / 2)) ** rng.uniform(1, 6) - 1
        else:
            part = np.sign(np.sin(x))
        v += rng.lognormal(0, 0.7) * part
    if rng.random() < 0.4:
        v += rng.normal(0, 2) * t / n
    phi, e = rng.uniform(0, 0.99), rng.normal(0, 1, n) * rng.lognormal(-1, 0.8)
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = phi * noise[i - 1] + e[i]
    v += noise
    if rng.random() < 0.3:
        v += np.cumsum(np.where(rng.random(n) < 3 / n, rng.normal(0, 2, n), 0.0))
    if rng.random() < 0.3:
        spikes = np.zeros(n)
        for s in np.flatnonzero(rng.random(n) < rng.uniform(1, 20) / n):
            length = min(int(rng.integers(1, 30)), n - int(s))
            spikes[s : s + length] += rng.lognormal(1, 0.5) * np.exp(-np.arange(length) / rng.uniform(1, 10))
        v += spikes
    if rng.random() < 0.15:
        on = np.sin(2 * np.pi * t / rng.uniform(20, 600) + rng.uniform(0, 6)) > rng.uniform(-0.5, 0.5)
        v = np.where(on, v, v.min() + rng.normal(0, 0.05, n))
    if rng.random() < 0.3:
        v = np.maximum(v, np.quantile(v, rng.uniform(0, 0.3)))
    values = 50.0 + 10.0 * (v - v.mean()) / max(float(v.std()), 1e-8)
    return pd.Series(np.clip(values, 0.0, None), index=index, name="value")


WORKLOADS = {
    "diurnal": diurnal,
    "bursty": bursty,
    "collapse": collapse,
    "drift": drift,
    "onoff": onoff,
    "mixed": mixed,
}
REGIME_CHANGES = ("collapse", "drift", "onoff")  # the workloads that break with their past at ``change``


def make_workload(kind: str, n: int, step: StepLike = "1min", seed: int = 0, **kwargs: float) -> pd.Series:
    if kind not in WORKLOADS:
        raise ValueError(f"unknown workload {kind!r}; choose one of {sorted(WORKLOADS)}")
    return WORKLOADS[kind](n, step, seed, **kwargs)  # type: ignore[operator]
