"""NAB scoring (forecaster.evaluation.nab) against values computed by hand from NAB's formulas.

The expected values are written out from ``nab/sweeper.py`` with ``math.exp``, not taken from the module:
in a window of rows [L, R] (width W) a detection at row i weighs ``2 * sigmoid(5 * (R - i + 1) / W) - 1``,
divided by ``2 * sigmoid(5) - 1`` and multiplied by tpWeight; a false positive at d = |R - i| / (W - 1) after a
window weighs ``fpWeight * (2 * sigmoid(-5 * d) - 1)`` (``-fpWeight`` when d > 3 or when no window precedes it);
a window left undetected costs ``-fnWeight``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from promcast.forecaster.evaluation.nab import (
    PROFILES,
    Profile,
    ksigma_detector,
    nab_score,
    null_detector,
    probation_length,
    scaled_sigmoid,
    score_detections,
)

N = 400  # rows per synthetic file; NAB's probationary period is then floor(0.15 * 400) = 60 rows
TIMES = pd.date_range("2024-01-01", periods=N, freq="5min")
ALL_PROFILES = sorted(PROFILES)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


MAX_TP = 2 * sigmoid(5) - 1  # 0.986614..., scaledSigmoid(-1), the weight of a window's first row


def window(first: int, last: int, times: pd.DatetimeIndex = TIMES) -> tuple[pd.Timestamp, pd.Timestamp]:
    return (times[first], times[last])


def flags_at(*rows: int, n: int = N) -> np.ndarray:
    flags = np.zeros(n, dtype=bool)
    flags[list(rows)] = True
    return flags


def test_profiles_are_nabs_cost_matrices() -> None:
    # config/profiles.json: standard, reward_low_FP_rate, reward_low_FN_rate
    assert PROFILES["standard"] == Profile(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0, tn_weight=1.0)
    assert PROFILES["reward_low_fp"] == Profile(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0, tn_weight=1.0)
    assert PROFILES["reward_low_fn"] == Profile(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0, tn_weight=1.0)


def test_scaled_sigmoid_matches_nab_docstring_values() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == pytest.approx(2 * sigmoid(-15) - 1, abs=1e-15)  # 3.0 itself is not "> 3"
    assert scaled_sigmoid(3.0001) == -1.0


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_detection_at_window_start_earns_tp_weight(name: str) -> None:
    profile = PROFILES[name]
    # Window rows 100..119 (W = 20): the first row sits at -(119 - 100 + 1) / 20 = -1, and the sweeper divides
    # scaledSigmoid(-1) by itself: the reward is tpWeight exactly (0.98661 * tpWeight before the division).
    expected = (2 * sigmoid(5 * 20 / 20) - 1) / MAX_TP * profile.tp_weight
    score = score_detections(TIMES, flags_at(100), [window(100, 119)], profile)
    assert score == pytest.approx(expected, abs=1e-12)
    assert score == pytest.approx(profile.tp_weight, abs=1e-12)


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_detection_inside_window_follows_the_sigmoid(name: str) -> None:
    profile = PROFILES[name]
    # Row 109 of 100..119: position -(119 - 109 + 1) / 20 = -0.55.
    expected = (2 * sigmoid(5 * 0.55) - 1) / MAX_TP * profile.tp_weight  # 0.8995...
    score = score_detections(TIMES, flags_at(109), [window(100, 119)], profile)
    assert score == pytest.approx(expected, abs=1e-12)
    assert 0.89 < score < 0.91


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_detection_at_window_end_earns_little(name: str) -> None:
    profile = PROFILES[name]
    # Window rows 200..299 (W = 100), detection at its last row: position -(299 - 299 + 1) / 100 = -0.01, so
    # (2 * sigmoid(0.05) - 1) / 0.98661 = 0.02533: near 0, as NAB intends, but not 0 (the "+ 1" of the sweeper).
    expected = (2 * sigmoid(5 * 1 / 100) - 1) / MAX_TP * profile.tp_weight
    score = score_detections(TIMES, flags_at(299), [window(200, 299)], profile)
    assert score == pytest.approx(expected, abs=1e-12)
    assert score == pytest.approx(0.02533, abs=1e-5)
    # ...and on a narrow window the last row is worth more: W = 20 gives (2 * sigmoid(0.25) - 1) / 0.98661.
    narrow = score_detections(TIMES, flags_at(119), [window(100, 119)], profile)
    assert narrow == pytest.approx((2 * sigmoid(0.25) - 1) / MAX_TP * profile.tp_weight, abs=1e-12)


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_false_positive_far_from_any_window_costs_fp_weight(name: str) -> None:
    profile = PROFILES[name]
    # No window at all: -fpWeight (NAB's testOneFalsePositiveNoWindow).
    assert score_detections(TIMES, flags_at(200), [], profile) == pytest.approx(-profile.fp_weight, abs=1e-15)
    # Before the first window (rows 300..319): no preceding window, the full -fpWeight, plus the missed window.
    before = score_detections(TIMES, flags_at(150), [window(300, 319)], profile)
    assert before == pytest.approx(-profile.fp_weight - profile.fn_weight, abs=1e-15)
    # Long after a window (rows 100..119): d = |119 - 350| / 19 = 12.2 > 3, the full -fpWeight; the window scores
    # its detection at row 100 (tpWeight).
    after = score_detections(TIMES, flags_at(100, 350), [window(100, 119)], profile)
    assert after == pytest.approx(profile.tp_weight - profile.fp_weight, abs=1e-15)


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_false_positive_right_after_a_window_is_penalised_less(name: str) -> None:
    profile = PROFILES[name]
    # Window rows 100..119 (W = 20), FP at row 120: d = |119 - 120| / (20 - 1) = 1 / 19.
    first = profile.fp_weight * (2 * sigmoid(-5 / 19) - 1)  # -0.1308 * fpWeight
    score = score_detections(TIMES, flags_at(120), [window(100, 119)], profile)
    assert score == pytest.approx(first - profile.fn_weight, abs=1e-12)
    assert -0.14 * profile.fp_weight < first < -0.12 * profile.fp_weight
    # Row 129: d = 10 / 19, a heavier penalty; the two false positives add up.
    second = profile.fp_weight * (2 * sigmoid(-50 / 19) - 1)
    both = score_detections(TIMES, flags_at(120, 129), [window(100, 119)], profile)
    assert both == pytest.approx(first + second - profile.fn_weight, abs=1e-12)
    assert second < first


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_no_detection_costs_fn_weight_per_window(name: str) -> None:
    profile = PROFILES[name]
    windows = [window(100, 119), window(250, 269)]
    none = np.zeros(N, dtype=bool)
    assert score_detections(TIMES, none, windows, profile) == pytest.approx(-2 * profile.fn_weight, abs=1e-15)


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_null_detector_normalises_to_0_and_perfect_to_100(name: str) -> None:
    profile = PROFILES[name]
    other = pd.date_range("2024-02-01", periods=300, freq="1min")
    windows_a = [window(100, 119), window(250, 269)]
    windows_b = [window(150, 179, other)]
    values_a, values_b = np.zeros(N), np.zeros(300)

    null = nab_score([(TIMES, null_detector(values_a), windows_a), (other, null_detector(values_b), windows_b)], name)
    assert null["null"] == pytest.approx(-3 * profile.fn_weight)
    assert null["perfect"] == pytest.approx(3 * profile.tp_weight)
    assert null["raw"] == pytest.approx(null["null"])
    assert null["score"] == pytest.approx(0.0, abs=1e-12)

    perfect = nab_score([(TIMES, flags_at(100, 250), windows_a), (other, flags_at(150, n=300), windows_b)], name)
    assert perfect["raw"] == pytest.approx(3 * profile.tp_weight, abs=1e-12)
    assert perfect["score"] == pytest.approx(100.0, abs=1e-9)

    # One window found at its start, the others missed: 100 * (1 - (-3 fn) - 2 fn) / (3 tp + 3 fn).
    half = nab_score([(TIMES, flags_at(100), windows_a), (other, np.zeros(300, dtype=bool), windows_b)], name)
    expected = 100 * (profile.tp_weight - 2 * profile.fn_weight + 3 * profile.fn_weight)
    assert half["score"] == pytest.approx(expected / (3 * profile.tp_weight + 3 * profile.fn_weight), abs=1e-9)


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_two_detections_in_one_window_count_once(name: str) -> None:
    profile = PROFILES[name]
    windows = [window(100, 119)]
    one = score_detections(TIMES, flags_at(100), windows, profile)
    assert score_detections(TIMES, flags_at(100, 105), windows, profile) == pytest.approx(one, abs=1e-15)
    assert score_detections(TIMES, flags_at(100, 119), windows, profile) == pytest.approx(one, abs=1e-15)
    # Only the earliest counts: rows 105 and 112 score as row 105 alone, position -(119 - 105 + 1) / 20.
    expected = (2 * sigmoid(5 * 15 / 20) - 1) / MAX_TP * profile.tp_weight
    assert score_detections(TIMES, flags_at(105, 112), windows, profile) == pytest.approx(expected, abs=1e-12)


def test_nab_unit_test_scoring_all_metrics() -> None:
    # NAB's tests/unit/scorer_test.py::testScoringAllMetrics: 100 rows, windows 30..34 and 65..69, detections at
    # 30 (TP), 31 (second TP, ignored) and 37 (FP, d = 3 / 4), all weights 1, no probation: NAB asserts -0.9540.
    times = pd.date_range("2015-01-01", periods=100, freq="5min")
    ones = Profile(1.0, 1.0, 1.0, 1.0)
    score = score_detections(
        times, flags_at(30, 31, 37, n=100), [window(30, 34, times), window(65, 69, times)], ones, 0
    )
    assert score == pytest.approx(1.0 + (2 * sigmoid(-3.75) - 1) - 1.0, abs=1e-12)
    assert score == pytest.approx(-0.9540, abs=1e-4)


def test_probation_ignores_early_detections() -> None:
    profile = PROFILES["standard"]
    assert probation_length(N) == 60  # floor(0.15 * 400)
    # A false positive at row 10 lies in the probationary period: ignored, unless the period is 0.
    assert score_detections(TIMES, flags_at(10), [], profile) == 0.0
    assert score_detections(TIMES, flags_at(10), [], profile, probation=0.0) == pytest.approx(-profile.fp_weight)
    assert score_detections(TIMES, flags_at(59), [], profile) == 0.0
    assert score_detections(TIMES, flags_at(60), [], profile) == pytest.approx(-profile.fp_weight)
    # A window entirely inside the probationary period is not scored at all: no false negative for it.
    assert score_detections(TIMES, np.zeros(N, dtype=bool), [window(10, 29)], profile) == 0.0
    assert score_detections(TIMES, np.zeros(N, dtype=bool), [window(10, 29)], profile, 0.0) == pytest.approx(-1.0)


def test_probation_is_capped_at_750_rows() -> None:
    # getProbationPeriod: min(floor(0.15 * n), 0.15 * 5000): 750 rows for long files, not 15% of them.
    assert probation_length(10_000) == 750
    assert probation_length(10_000, 0.1) == 500
    times = pd.date_range("2024-01-01", periods=10_000, freq="1min")
    profile = PROFILES["standard"]
    assert score_detections(times, flags_at(749, n=10_000), [], profile) == 0.0
    assert score_detections(times, flags_at(750, n=10_000), [], profile) == pytest.approx(-profile.fp_weight)


def test_window_limits_must_be_timestamps_of_the_file() -> None:
    with pytest.raises(ValueError, match="timestamps of the file"):
        score_detections(TIMES, flags_at(100), [(TIMES[100] + pd.Timedelta("1min"), TIMES[119])])
    with pytest.raises(ValueError, match="overlap"):
        score_detections(TIMES, flags_at(100), [window(100, 119), window(110, 130)])


def noisy_flat(seed: int, n: int = 300) -> np.ndarray:
    return 10.0 + np.random.default_rng(seed).normal(0.0, 1.0, n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ksigma_flags_an_injected_spike_and_nothing_else(seed: int) -> None:
    values = noisy_flat(seed)
    assert not ksigma_detector(values, window=50, k=5.0).any()  # the noise alone raises nothing
    values[200] += 12.0
    flags = ksigma_detector(values, window=50, k=5.0)
    assert np.flatnonzero(flags).tolist() == [200]


def test_ksigma_is_causal_and_waits_for_a_full_window() -> None:
    values = noisy_flat(3)
    values[20] += 50.0  # a spike before a full window has been seen is not flagged
    values[150] += 12.0
    flags = ksigma_detector(values, window=50, k=5.0)
    assert not flags[:50].any()
    assert flags[150]
    changed = values.copy()
    changed[151:] = 1e6  # the future does not change past decisions
    assert np.array_equal(ksigma_detector(changed, window=50, k=5.0)[:151], flags[:151])
    # The current point is not part of its own statistics: a constant series then a step flags the step.
    step = np.concatenate([np.ones(60), [1.5]])
    assert ksigma_detector(step, window=10, k=3.0).tolist() == [False] * 60 + [True]


def test_null_detector_never_flags() -> None:
    values = noisy_flat(4)
    values[200] += 100.0
    flags = null_detector(values)
    assert flags.dtype == bool
    assert flags.shape == values.shape
    assert not flags.any()


def test_one_row_window() -> None:
    profile = PROFILES["standard"]
    # The window's only row is its first: tpWeight. A false positive after it would divide by W - 1 = 0 in NAB's
    # sweeper; the module takes d = 2.0 as NAB's earlier scorer.py did: fpWeight * (2 * sigmoid(-10) - 1).
    assert score_detections(TIMES, flags_at(100), [window(100, 100)], profile) == pytest.approx(profile.tp_weight)
    after = score_detections(TIMES, flags_at(101), [window(100, 100)], profile)
    assert after == pytest.approx(profile.fp_weight * (2 * sigmoid(-10) - 1) - profile.fn_weight, abs=1e-15)
