"""``promcast bursts``: replay a series through the daemon's burst detector (daemon/cycle/bursts.py) and, given NAB's
labelled anomaly windows, score it with NAB's method beside a rolling k-sigma detector and the null detector.

Protocol. NAB lets a detector learn during each file's probationary period (its first 15 %, at most 750 rows) and
scores the rest. The forecaster is fitted on exactly those rows (the last fifth of them validates and calibrates
it; a frozen model, daemon.offline.replay_model, is not fitted) and forecasts every step after, each forecast
seeing only the data before its origin; every actual value after the probationary period is scored against the
bands of the forecasts that covered it, as the daemon scores it.
(Fitting on the benchmark's first 80 % instead would leave 7 of the 36 labelled windows of NAB's traces to score.)

The bands are the daemon's: each series' width factors (daemon/cycle/calibrate.py) learn from the values scored
before each origin, so a heavy-tailed series' band widens to its own tails as it does live.

Detections. A detector's detections are the onsets of its bursts (the step its flag rises), for ours and for the
baselines alike: an alert fires once per burst, and NAB would count each further flagged step outside a window
as another false positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from promcast.daemon.cycle.bursts import BurstParams, combine, excess, flags
from promcast.daemon.cycle.calibrate import SeriesCalibration
from promcast.daemon.offline.replay_model import Frozen, replay_model
from promcast.daemon.offline.report import INTERNAL
from promcast.daemon.offline.results import FittedModel
from promcast.daemon.settings import TargetSettings
from promcast.daemon.types import SeriesKey
from promcast.forecaster.data import RegularSeries
from promcast.forecaster.evaluation.nab import PROFILES, ksigma_detector, nab_score, null_detector, probation_length
from promcast.forecaster.names import DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_WINDOW
from promcast.forecaster.progress import Stage, quiet
from promcast.forecaster.protocol import inputs_at, season_for

__all__ = [
    "KSIGMA_K",
    "LEVEL",
    "BurstSettings",
    "BurstsResult",
    "BurstsSeries",
    "Detections",
    "DetectorScore",
    "KSigma",
    "WindowHits",
    "ksigma_window",
    "onsets",
    "run_bursts",
    "window_hits",
]

KSIGMA_K = 3.0  # the rolling baseline's k, fixed a priori (three standard deviations)
LEVEL = 0.95  # the band the score measures against: the daemon's widest level by default
ACI_GAMMA = TargetSettings.model_fields["aci_gamma"].default  # the bands adapt per series as the daemon's do


@dataclass(frozen=True)
class KSigma:
    """The rolling k-sigma baseline's settings: its window in steps and its k."""

    window: int
    k: float


@dataclass(frozen=True)
class BurstSettings:
    """The detector's settings (promcast.daemon.cycle.bursts.BurstParams), the band's level and the baseline's."""

    threshold: float
    persistence: int
    spike: float | None
    level: float
    ksigma: KSigma


@dataclass(frozen=True)
class Detections:
    """How many bursts each detector flagged (their onsets)."""

    promcast: int
    ksigma: int
    null: int


@dataclass(frozen=True)
class WindowHits:
    """A detector against the labelled windows: how many it found, and its detections outside every window."""

    found: int  # labelled windows holding at least one detection
    windows: int
    false: int  # detections outside every window
    false_per_day: float  # over the scored steps


def window_hits(index: pd.DatetimeIndex, detections: np.ndarray, windows: list[list[str]], start: int) -> WindowHits:
    """``detections`` (n,) bool, from step ``start`` on, against the labelled [start, end] ``windows``."""
    times = index[start:][np.asarray(detections, dtype=bool)[start:]]
    spans = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows]
    inside = np.zeros(len(times), dtype=bool)
    found = 0
    for a, b in spans:
        here = (times >= a) & (times <= b)
        found += bool(here.any())
        inside |= here
    days = max((index[-1] - index[start]) / pd.Timedelta(days=1), 1e-9)
    false = int((~inside).sum())
    return WindowHits(found, len(spans), false, round(false / days, 3))


@dataclass(frozen=True)
class DetectorScore:
    """A baseline's NAB score per profile."""

    score: dict[str, float]


@dataclass(frozen=True)
class BurstsSeries:
    """The replay's arrays, for bursts.csv, the figure and the benchmark's variants (not in metrics.json)."""

    index: pd.DatetimeIndex  # (n,) every step of the series
    values: np.ndarray  # (n,)
    scores: np.ndarray  # (n,) the step's score; NaN before ``start``
    flag: np.ndarray  # (n,) bool: in a burst
    onsets: np.ndarray  # (n,) bool: promcast's detections
    band: tuple[np.ndarray, np.ndarray]  # (T,) each: the band of the forecast one step ahead, from ``start``
    start: int  # the first scored step
    excesses: np.ndarray  # (T, H) each covering forecast's excess
    baselines: dict[str, np.ndarray]  # (n,) bool per baseline ("ksigma", "null"): its detections


@dataclass(frozen=True)
class BurstsResult:
    """One trace's burst replay: its metrics.json is ``daemon.offline.report.document`` of this. Without labelled
    windows, ``windows``, ``score`` and ``baselines`` are None (and left out of the JSON)."""

    input: str
    points: int
    step_seconds: float
    fit_points: int  # NAB's probationary rows: the model's fit, unless it is frozen
    scored_from: str
    model: FittedModel
    settings: BurstSettings
    detections: Detections
    flagged: list[str]  # the onsets' timestamps
    windows: list[list[str]] | None  # the labelled [start, end] windows
    score: dict[str, float] | None  # promcast's NAB score per profile
    baselines: dict[str, DetectorScore] | None  # "ksigma", "null"
    hits: dict[str, WindowHits] | None  # "promcast", "ksigma": the labelled windows found, the false positives
    series: BurstsSeries = field(repr=False, compare=False, metadata=INTERNAL)


def onsets(flag: np.ndarray) -> np.ndarray:
    """The steps a flag rises: True where it is set and was not at the step before."""
    f = np.asarray(flag, dtype=bool)
    return f & ~np.concatenate([[False], f[:-1]])


def ksigma_window(step: pd.Timedelta) -> int:
    """The k-sigma baseline's window: one day of steps (at least 12; 288 where a day holds no season)."""
    season = season_for(step)
    return max(12, season if season is not None else 288)


def covering_bands(lower: np.ndarray, upper: np.ndarray, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """From bands (N, H) of the origins first..first+N-1 (origin o forecasts steps o..o+H-1), the bands (T, H) that
    covered each step first..n-1: column h is the forecast made h steps before; NaN where no origin covered it."""
    count, horizon = lower.shape
    times = n - first
    lo, hi = np.full((times, horizon), np.nan), np.full((times, horizon), np.nan)
    for h in range(horizon):
        rows = np.arange(h, min(times, count + h))  # steps first + h .. covered by origin (step - h)
        lo[rows, h], hi[rows, h] = lower[rows - h, h], upper[rows - h, h]
    return lo, hi


def calibrated(
    values: np.ndarray, first: int, point: np.ndarray, lower: np.ndarray, upper: np.ndarray, eta: float
) -> tuple[np.ndarray, np.ndarray]:
    """The bands (N, H) of the origins first..first+N-1 as the daemon publishes them: scaled by the series' own
    width factors (daemon.cycle.calibrate), each origin's learned from the values known before it."""
    count, horizon = point.shape
    cal = SeriesCalibration((LEVEL,), horizon, eta)
    key: SeriesKey = (("series", "replay"),)
    out_lo, out_hi = np.empty_like(lower), np.empty_like(upper)
    steps = np.arange(horizon)
    for i in range(count):
        if i:  # the value at step first + i - 1 arrived: score the published bands that covered it
            j = i - 1 - steps  # the origin whose step h + 1 it is
            ok = j >= 0
            actual = values[first + i - 1]
            miss = (actual < out_lo[j[ok], steps[ok]]) | (actual > out_hi[j[ok], steps[ok]])
            excess = np.zeros((1, 1, horizon))
            excess[0, 0, ok] = miss.astype(float) - (1.0 - LEVEL)
            cal.learn([key], excess)
        scaled = cal.apply([key], point[i : i + 1], {LEVEL: (lower[i : i + 1], upper[i : i + 1])})
        out_lo[i], out_hi[i] = scaled[LEVEL][0][0], scaled[LEVEL][1][0]
    return out_lo, out_hi


def run_bursts(
    name: str,
    reg: RegularSeries,
    params: BurstParams,
    windows: list[list[str]] | None = None,
    model: str = DEFAULT_MODEL,
    fast: bool = False,
    seed: int = 0,
    frozen: Frozen | None = None,
    stage: Stage = quiet,
    eta: float = ACI_GAMMA,
) -> BurstsResult:
    """Fit on the probationary rows (or take ``frozen`` as it is), score every later step, flag bursts; with
    ``windows``, NAB's scores. ``stage`` is told each step as it begins."""
    values, n = reg.values, len(reg.values)
    first = math.ceil(probation_length(n))
    index = pd.date_range(reg.start, periods=n, freq=reg.step)
    history = pd.Series(values[:first], index=index[:first])
    stage(f"loading {frozen.name}" if frozen else f"fitting {model} on {first} points")
    fc, about = replay_model(history, frozen, model, DEFAULT_WINDOW, DEFAULT_HORIZON, 0.2, fast, seed)
    if fc.calibration is None:
        raise ValueError(f"model {about['name']!r} has no interval calibration; burst scores need its bands")
    origins = np.arange(max(first, fc.input_length), n)
    stage(f"forecasting {len(origins)} steps, flagging bursts")
    point, bands = fc.predict_interval(inputs_at(values, origins, fc.input_length), (LEVEL,))
    lower, upper = calibrated(values, int(origins[0]), point, *bands[LEVEL], eta)
    lo, hi = covering_bands(lower, upper, int(origins[0]), n)
    start = int(origins[0])
    excesses = np.where(np.isnan(lo), np.nan, excess(values[start:, None], lo, hi))  # (T, H): each forecast's
    scores = np.full(n, np.nan)
    scores[start:] = combine(excesses)  # what step_scores computes, kept apart for the benchmark's variants
    flag, _, _ = flags(scores, params)
    ours = onsets(flag)
    kwin = ksigma_window(reg.step)
    baselines = {"ksigma": onsets(ksigma_detector(values, kwin, KSIGMA_K)), "null": null_detector(values)}
    labelled = windows is not None

    def profiles(detections: np.ndarray) -> dict[str, float]:
        pairs = [(a, b) for a, b in windows or []]
        return {p: nab_score([(index, detections, pairs)], p)["score"] for p in PROFILES}

    return BurstsResult(
        input=name,
        points=n,
        step_seconds=reg.step.total_seconds(),
        fit_points=first,
        scored_from=str(index[start]),
        model=FittedModel(**about),
        settings=BurstSettings(params.threshold, params.persistence, params.spike, LEVEL, KSigma(kwin, KSIGMA_K)),
        detections=Detections(int(ours.sum()), int(baselines["ksigma"].sum()), int(baselines["null"].sum())),
        flagged=[str(t) for t in index[ours]],
        windows=windows,
        score=profiles(ours) if labelled else None,
        baselines={k: DetectorScore(profiles(v)) for k, v in baselines.items()} if labelled else None,
        hits={
            k: window_hits(index, v, windows or [], start)
            for k, v in (("promcast", ours), ("ksigma", baselines["ksigma"]))
        }
        if labelled
        else None,
        series=BurstsSeries(index, values, scores, flag, ours, (lo[:, 0], hi[:, 0]), start, excesses, baselines),
    )
