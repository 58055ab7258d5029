"""NAB (Numenta Anomaly Benchmark) scoring of binary detections, and two baseline detectors.

A faithful re-implementation of the scoring of https://github.com/numenta/NAB for detections that are already
binary (one flag per row), on numpy and pandas alone:

* the cost matrices are those of NAB's ``config/profiles.json``;
* the per-row weights follow ``Sweeper.calcSweepScore`` and ``scaledSigmoid`` in ``nab/sweeper.py``;
* the per-file raw score follows ``Sweeper.calcScoreByThreshold`` / ``Sweeper.scoreDataSet`` in ``nab/sweeper.py``
  at a threshold that keeps exactly the flagged rows;
* the probationary period is ``getProbationPeriod`` in ``nab/util.py``;
* the normalised score is ``Runner.normalize`` in ``nab/runner.py``: ``100 * (raw - null) / (perfect - null)``.

NAB's quirks are kept on purpose (see each docstring); where NAB's code has no answer (it crashes or silently
misbehaves) this module says what it does instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "PROFILES",
    "FileDetections",
    "Profile",
    "ksigma_detector",
    "nab_score",
    "null_detector",
    "probation_length",
    "scaled_sigmoid",
    "score_detections",
]

#: A window as NAB labels it: (first timestamp, last timestamp), both inclusive and both present in the file.
Window = tuple[Any, Any]
#: One file for :func:`nab_score`: (times, flags, windows).
FileDetections = tuple[Any, Any, Sequence[Window]]

#: NAB's default probationary fraction (``Runner.probationaryPercent`` in ``nab/runner.py``).
DEFAULT_PROBATION = 0.15


class Profile(NamedTuple):
    """One NAB application profile: the ``CostMatrix`` of ``config/profiles.json``.

    ``tn_weight`` is carried for completeness; NAB's scoring never reads it (``Sweeper.setCostMatrix``).
    """

    tp_weight: float
    fp_weight: float
    fn_weight: float
    tn_weight: float


#: NAB's three profiles, with the weights of ``config/profiles.json`` (``standard``, ``reward_low_FP_rate``,
#: ``reward_low_FN_rate``).
PROFILES: dict[str, Profile] = {
    "standard": Profile(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0, tn_weight=1.0),
    "reward_low_fp": Profile(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0, tn_weight=1.0),
    "reward_low_fn": Profile(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0, tn_weight=1.0),
}

# NAB's own spelling of the profile names, accepted as aliases.
_NAB_NAMES = {"reward_low_FP_rate": "reward_low_fp", "reward_low_FN_rate": "reward_low_fn"}


def _profile(profile: Profile | str) -> Profile:
    if isinstance(profile, Profile):
        return profile
    name = _NAB_NAMES.get(profile, profile)
    if name not in PROFILES:
        raise ValueError(f"unknown NAB profile {profile!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[name]


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's scaled sigmoid of a relative position in or after a window (``scaledSigmoid``, ``nab/sweeper.py``).

    ``2 * sigmoid(-5 * x) - 1``, and exactly ``-1.0`` when ``x > 3.0`` ("FP well behind window"). Inside a window
    ``x`` runs from -1 (the window's first row: 0.98661) towards 0 (its right edge: 0); after a window ``x`` > 0
    gives a negative weight that reaches about -0.98661 at 1.0 and -1 beyond 3.0.
    """
    if relative_position > 3.0:
        return -1.0
    return 2 * _sigmoid(-5 * relative_position) - 1.0


def probation_length(n_rows: int, probation: float = DEFAULT_PROBATION) -> float:
    """Rows at the head of a file that NAB leaves out of scoring (``getProbationPeriod``, ``nab/util.py``).

    ``min(floor(probation * n_rows), probation * 5000)``: 15% of the file by default, capped at
    ``0.15 * 5000 = 750`` rows (the cap is on the row count, not at 5000 rows). Rows ``i < probation_length`` are
    ignored, as ``Sweeper.calcSweepScore`` marks them "probationary".
    """
    if not 0.0 <= probation < 1.0:
        raise ValueError(f"probation must be a fraction in [0, 1), got {probation}")
    return min(math.floor(probation * n_rows), probation * 5000)


def _times(times: Any) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(times)
    if not index.is_unique or not index.is_monotonic_increasing:
        raise ValueError("times must be strictly increasing (NAB looks window limits up by timestamp)")
    return index


def _window_rows(index: pd.DatetimeIndex, windows: Sequence[Window]) -> list[tuple[int, int]]:
    """Row numbers (first, last) of each window, sorted; the limits must be timestamps of the file."""
    rows: list[tuple[int, int]] = []
    for start, end in windows:
        first, last = (int(i) for i in index.get_indexer(pd.DatetimeIndex([pd.Timestamp(start), pd.Timestamp(end)])))
        if first < 0 or last < 0:
            raise ValueError(f"window ({start}, {end}): both limits must be timestamps of the file, as NAB labels are")
        if last < first:
            raise ValueError(f"window ({start}, {end}) ends before it starts")
        rows.append((first, last))
    rows.sort()
    for (_, prev_last), (first, _) in itertools.pairwise(rows):
        if first <= prev_last:
            raise ValueError("windows overlap; NAB expects disjoint windows")
    return rows


def score_detections(
    times: Any,
    flags: Any,
    windows: Sequence[Window],
    profile: Profile | str = "standard",
    probation: float = DEFAULT_PROBATION,
) -> float:
    """NAB's raw score of one file's binary detections (``Sweeper.calcSweepScore`` + ``calcScoreByThreshold``).

    The rules, all from ``nab/sweeper.py``:

    * a row ``i`` in a window of rows ``[L, R]`` (width ``W = R - L + 1``) weighs
      ``scaled_sigmoid(-(R - i + 1) / W) * tp_weight / scaled_sigmoid(-1)``: exactly ``tp_weight`` at ``L``,
      ``(2 * sigmoid(5 / W) - 1) / 0.98661 * tp_weight`` at ``R`` (small for wide windows);
    * each window scores ``max(-fn_weight, weights of its detected rows)``: only the best, i.e. the earliest,
      detection counts, later ones in the same window change nothing; a window with no detection costs
      ``-fn_weight``;
    * a detection outside every window is a false positive weighing ``fp_weight * scaled_sigmoid(d)``, where
      ``d = |R_prev - i| / (W_prev - 1)`` is its distance after the closest preceding window (just after it:
      a lighter penalty; ``d > 3``: the full ``-fp_weight``); before the first window: the full ``-fp_weight``;
      all false positives add up;
    * rows before :func:`probation_length` are ignored (as detections and as window rows): a window entirely inside
      the probationary period counts for nothing, not even a false negative.

    Where NAB has no answer: a false positive after a one-row window divides by zero in NAB; here it takes
    ``d = 2.0`` (the rule of NAB's earlier ``nab/scorer.py`` for windows of length <= 1). Windows whose limits are
    not timestamps of the file, that overlap, or times that are not strictly increasing raise ``ValueError``
    (NAB would skip or crash); windows are sorted first (NAB assumes they are).

    ``times``: a DatetimeIndex (or datetime64 array); ``flags``: one bool per row, True where detected;
    ``windows``: (start, end) timestamps, inclusive; ``profile``: a :class:`Profile` or a key of :data:`PROFILES`;
    ``probation``: the probationary fraction (0 scores every row).
    """
    weights = _profile(profile)
    index = _times(times)
    detected = np.asarray(flags, dtype=bool)
    if detected.shape != (len(index),):
        raise ValueError(f"flags must be one bool per time: {detected.shape} for {len(index)} times")
    rows = _window_rows(index, windows)
    first_scored = probation_length(len(index), probation)
    max_tp = scaled_sigmoid(-1.0)

    n = len(index)
    window_of = np.full(n, -1, dtype=np.int64)
    for k, (first, last) in enumerate(rows):
        window_of[first : last + 1] = k
    lasts = np.array([last for _, last in rows], dtype=np.int64)
    # The closest window that ended strictly before each row (-1: none yet), as calcSweepScore's prevWindow*.
    preceding = np.searchsorted(lasts, np.arange(n), side="left") - 1

    # calcScoreByThreshold: one part per window that has a scorable row, starting at a false negative.
    parts = {k: -weights.fn_weight for k, (_, last) in enumerate(rows) if last >= first_scored}
    fp_part = 0.0
    hit: list[int] = []  # windows with a scored detection, in time order
    for i in np.flatnonzero(detected).tolist():
        if i < first_scored:
            continue
        k = int(window_of[i])
        if k >= 0:
            first, last = rows[k]
            position = -(last - i + 1) / float(last - first + 1)
            parts[k] = max(parts[k], scaled_sigmoid(position) * weights.tp_weight / max_tp)
            hit.append(k)
            continue
        p = int(preceding[i])
        if p < 0:
            unweighted = -1.0
        else:
            first, last = rows[p]
            width = last - first + 1
            unweighted = scaled_sigmoid(abs(last - i) / float(width - 1) if width > 1 else 2.0)
        fp_part += unweighted * weights.fp_weight
    # NAB sums scoreParts.values(): "fp" first, then the windows in the order calcScoreByThreshold met them in its
    # list sorted by anomaly score (detected windows first, then the others, each in time order). Same order, so
    # the same rounding.
    order = list(dict.fromkeys(hit)) + [k for k in parts if k not in hit]
    total = fp_part
    for k in order:
        total += parts[k]
    return float(total)


def nab_score(
    files: Sequence[FileDetections],
    profile: Profile | str = "standard",
    probation: float = DEFAULT_PROBATION,
) -> dict[str, float]:
    """NAB's normalised score over several files (``Runner.normalize``, ``nab/runner.py``).

    ``raw`` sums :func:`score_detections` over the files (``scoreCorpus``'s "Totals" row); ``null`` is the raw
    score of the null detector, which never detects (``-fn_weight`` per scorable window); ``perfect`` is
    ``tp_weight`` times the number of windows (NAB's ``tpCount`` counts every labelled window); and
    ``score = 100 * (raw - null) / (perfect - null)``: 0 for the null detector, 100 for one detection at the
    first row of every window. ``score`` is NaN when ``perfect == null`` (no windows).

    ``files``: a sequence of (times, flags, windows) as :func:`score_detections` takes them.
    """
    weights = _profile(profile)
    raw = null = 0.0
    n_windows = 0
    for times, flags, windows in files:
        raw += score_detections(times, flags, windows, weights, probation)
        null += score_detections(times, np.zeros(len(times), dtype=bool), windows, weights, probation)
        n_windows += len(windows)
    perfect = n_windows * weights.tp_weight
    score = 100.0 * (raw - null) / (perfect - null) if perfect != null else math.nan
    return {
        "score": float(score),
        "raw": float(raw),
        "null": float(null),
        "perfect": float(perfect),
        "windows": float(n_windows),
        "files": float(len(files)),
    }


def ksigma_detector(values: Any, window: int, k: float) -> np.ndarray:
    """Flag rows more than ``k`` rolling standard deviations from the rolling mean of the ``window`` rows before.

    A causal baseline (each flag uses rows ``i - window .. i - 1`` and row ``i`` only): flag ``i`` when
    ``|x[i] - mean| > k * std`` with the sample standard deviation (ddof=1, pandas' default) of the previous
    ``window`` values; no flag for the first ``window`` rows, nor where the previous ``window`` rows hold a NaN.
    Not a NAB detector (NAB's ``nab/detectors/gaussian/windowedGaussian_detector.py`` is the nearest); its output
    is a flag array for :func:`score_detections`.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2 (a standard deviation needs two values), got {window}")
    series = pd.Series(np.asarray(values, dtype=np.float64))
    past = series.shift(1).rolling(window, min_periods=window)
    mean, std = past.mean(), past.std(ddof=1)
    flags = ((series - mean).abs() > k * std).to_numpy(dtype=bool)
    return np.asarray(flags & mean.notna().to_numpy(), dtype=bool)


def null_detector(values: Any) -> np.ndarray:
    """Never flags: the baseline that NAB's normalisation maps to 0 (``nab/detectors/null/null_detector.py``).

    NAB's null detector emits a constant anomaly score of 0.5 that its optimised threshold never turns into a
    detection; as flags, that is all False.
    """
    return np.zeros(len(values), dtype=bool)
