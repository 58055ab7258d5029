"""Burst detection: the score, persistence, the daemon's gauges and counter, and how far a burst moves its
series' bands."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from promcast.daemon.cli import main
from promcast.daemon.cycle.bursts import BurstDetector, BurstParams, excess, flags, step_scores
from promcast.daemon.cycle.job import ForecastJob
from promcast.daemon.cycle.quality import QualityTracker
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.models.serving import ModelHolder
from promcast.daemon.models.store import ModelStore
from promcast.daemon.offline.bursts import run_bursts
from promcast.daemon.offline.report import document
from promcast.daemon.settings import TargetSettings
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster
from promcast.forecaster.data import load_csv, regularise

from .support.http import samples
from .support.scripted import KEY, START, STEP, Scripted


def test_the_score_is_the_distance_outside_the_band_in_band_widths() -> None:
    np.testing.assert_allclose(excess(np.array([5.0, 12.0, 0.0, 10.0]), 4.0, 6.0), [0.0, 3.0, 2.0, 2.0])
    # the median over the forecasts that covered each time (one forecast that followed the burst, the second
    # column, does not hide it); a time no forecast covered has no score
    lower = np.array([[4.0, 0.0, 4.0], [4.0, np.nan, 0.0], [np.nan, np.nan, np.nan]])
    upper = np.array([[6.0, 20.0, 5.0], [6.0, np.nan, 20.0], [np.nan, np.nan, np.nan]])
    got = step_scores(np.array([12.0, 12.0, 12.0]), lower, upper)
    np.testing.assert_allclose(got[:2], [3.0, 1.5])
    assert np.isnan(got[2])


def test_persistence_keeps_one_noisy_point_from_being_a_burst() -> None:
    scores = np.array([0, 5, 0, 0, 5, 5, 5, 0, 5, 0], dtype=float)
    flag, onset, run = flags(scores, BurstParams(threshold=1.0, persistence=2))
    np.testing.assert_array_equal(flag, [0, 0, 0, 0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(onset, [0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    assert run == 0
    # One score beyond `spike` is a burst at once.
    flag3, onset3, _ = flags(np.array([0, 12, 0, 5, 0]), BurstParams(threshold=1.0, persistence=2, spike=10.0))
    np.testing.assert_array_equal(flag3, [0, 1, 0, 0, 0])
    assert onset3.sum() == 1
    flag1, onset1, _ = flags(scores, BurstParams(threshold=1.0, persistence=1))
    assert flag1.sum() == 5
    assert onset1.sum() == 3
    # A step with no score (no forecast covered it) neither ends a burst nor starts it again.
    flag2, onset2, _ = flags(np.array([5, 5, np.nan, 5, 0]), BurstParams(threshold=1.0, persistence=2))
    np.testing.assert_array_equal(flag2, [0, 1, 1, 1, 0])
    assert onset2.sum() == 1
    # The online detector, fed the same scores one step at a time, agrees with the offline flags.
    det = BurstDetector(BurstParams(threshold=1.0, persistence=2))
    online = []
    for v in scores:
        online.append(len(det.update([KEY], np.array([[v]]))))
        assert det.state([KEY])[1][0] == flag[len(online) - 1]
    np.testing.assert_array_equal(online, onset)


def _job(tmp_path, values: np.ndarray, **settings) -> tuple[ForecastJob, Scripted, Metrics]:
    """A job serving an AR model fitted on a noisy sine, replayed over ``values``."""
    rng = np.random.default_rng(0)
    train = pd.Series(10.0 + 5.0 * np.sin(2 * np.pi * np.arange(2000) / 24) + rng.normal(0, 0.05, 2000))
    train.index = pd.date_range(START - 2100 * STEP, periods=2000, freq=STEP, tz="UTC")
    target = TargetSettings(
        name="t", query="q", window=24, model="ar", history=timedelta(days=1), guard={"enabled": False}, **settings
    )
    store = ModelStore(tmp_path, "t")
    store.publish(Forecaster("ar", window=24, step=STEP, gate=None).fit(train))
    source = Scripted(values)
    metrics = Metrics(CollectorRegistry(), ["t"], clock=lambda: source.now().timestamp())
    return ForecastJob(target, source, ModelHolder(store, target), metrics, 3.0), source, metrics


def _sine(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10.0 + 5.0 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 0.05, n)


def test_injected_spikes_are_flagged_and_the_quiet_part_is_not(tmp_path, caplog) -> None:
    values = _sine(320)
    values[150] += 1.0  # one noisy point, a few band widths out: no burst with persistence 2
    values[200:203] += 1.5  # three steps: a burst from the second
    values[205] += 20.0  # one spike far beyond `spike` band widths: a burst at once
    job, source, metrics = _job(tmp_path, values)
    published = {}
    for i in range(100, 212):
        source.at = START + i * STEP
        assert job().ok
        fc = metrics.snapshot()[0]["t"]
        assert fc.burst_score is not None
        assert fc.burst is not None
        published[i] = (float(fc.burst_score[0]), float(fc.burst[0]))
    assert 1.0 < published[150][0] < 10.0
    assert published[150][1] == 0.0
    assert published[205][0] > 10.0
    # Flagged: the burst from its second step, the spike at once. (After a burst, it sits in the next forecasts'
    # input windows, and this AR model echoes it 12 and 24 steps on.)
    assert [i for i, (_, flag) in published.items() if flag] == [201, 202, 205]
    quiet = [s for i, (s, _) in published.items() if i < 200 and i != 150]
    assert np.isnan(quiet[0])
    assert np.nanmax(quiet) < 1.0
    page = metrics.exposition().decode()
    assert samples(page, "promcast_bursts_total") == [({"target": "t"}, 2.0)]
    assert samples(page, "promcast_burst") == [({"instance": "a", "target": "t"}, 0.0)]
    assert len(samples(page, "promcast_burst_score")) == 1


def _tracker(enabled: bool) -> QualityTracker:
    return QualityTracker(pd.Timedelta(STEP), 3, (0.95,), 100, 0.01, enabled)


def test_a_burst_widens_only_its_own_series_bands_by_a_bounded_step() -> None:
    """Forecasts of 10 with a band [9, 11]; the actual values stay inside, except three steps at 30 on one series
    and at 3000 on another. Each burst value is scored once per step ahead, a miss: it widens that series' band at
    that step by gamma x 0.95 where a hit narrows it by gamma x 0.05, however far out it lies. The calm series'
    bands do not move with them, and coverage counts the misses."""
    near, far, calm = KEY, (("instance", "far"),), (("instance", "calm"),)
    index = pd.date_range(START, periods=60, freq=STEP, tz="UTC")
    actual = {k: pd.Series(10.0 + 0.5 * np.sin(np.arange(60)), index=index) for k in (near, far, calm)}
    actual[near].iloc[30:33] = 30.0
    actual[far].iloc[30:33] = 3000.0
    tracker, keys, gamma = _tracker(True), [near, far, calm], 0.01
    for t in range(57):
        band = (np.full((3, 3), 9.0), np.full((3, 3), 11.0))
        tracker.record(index[t], keys, np.full((3, 3), 10.0), np.full(3, 10.0), {0.95: band})
        tracker.observe({k: v.iloc[: t + 1] for k, v in actual.items()})
    log = np.log(tracker.calibration.factors(keys))[:, 0]  # (series, step) at the level 0.95
    np.testing.assert_array_equal(log[0], log[1])  # 30 or 3000: the same step
    np.testing.assert_allclose(log[0] - log[2], 3 * gamma * (0.95 + 0.05), rtol=1e-9)  # 3 misses where calm hit
    assert tracker.snapshot().coverage[0.95] < 1.0  # the misses are still counted as misses
    # one onset, at the second step at 30: (30 - 11) / 2 band widths above every covering band
    assert _tracker_onsets() == [(KEY, 9.5)]


def _tracker_onsets() -> list[tuple[SeriesKey, float]]:
    tracker, detector = _tracker(True), BurstDetector(BurstParams(threshold=1.0, persistence=2))
    index = pd.date_range(START, periods=10, freq=STEP, tz="UTC")
    actual = pd.Series([10.0, 10, 10, 30, 30, 10, 10, 10, 10, 10], index=index)
    onsets = []
    for t in range(9):
        tracker.record(
            index[t],
            [KEY],
            np.full((1, 3), 10.0),
            np.array([10.0]),
            {0.95: (np.full((1, 3), 9.0), np.full((1, 3), 11.0))},
        )
        scored = tracker.observe({KEY: actual.iloc[: t + 1]})
        if scored.burst_keys:  # what the cycle's score step hands the detector
            onsets.extend(detector.update(scored.burst_keys, scored.burst_scores))
    return onsets


def _spiky_csv(tmp_path) -> tuple[Path, dict[str, list[list[str]]]]:
    """A noisy daily cycle at 5 minutes with three injected bursts after NAB's probationary period, and NAB-style
    labels: a window around each."""
    n = 4000
    rng = np.random.default_rng(7)
    index = pd.date_range("2024-01-01", periods=n, freq="5min")
    values = 50 + 20 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 1.0, n)
    windows = []
    for at in (1500, 2500, 3500):
        values[at : at + 3] += 40.0
        windows.append([str(index[at - 20]), str(index[at + 20])])
    csv = tmp_path / "spiky.csv"
    pd.DataFrame({"timestamp": index, "value": values}).to_csv(csv, index=False)
    return csv, {"spiky": windows}


def test_bursts_command_flags_the_injected_bursts_and_scores_them(tmp_path, capsys) -> None:
    csv, labels = _spiky_csv(tmp_path)
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    out = tmp_path / "out"
    rc = main(["bursts", "--input", str(csv), "--labels", str(tmp_path / "labels.json"), "--out", str(out), "--fast"])
    assert rc == 0, capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert m["fit_points"] == 600  # NAB's probationary period: 15 % of 4,000 rows
    flagged = pd.to_datetime(m["flagged"])
    inside = [any(pd.Timestamp(a) <= t <= pd.Timestamp(b) for a, b in labels["spiky"]) for t in flagged]
    assert len(flagged) == 3
    assert all(inside)
    assert m["score"]["standard"] > 90
    assert set(m["score"]) == {"standard", "reward_low_fp", "reward_low_fn"}
    assert m["baselines"]["null"]["score"] == {"standard": 0.0, "reward_low_fp": 0.0, "reward_low_fn": 0.0}
    assert set(m["baselines"]["ksigma"]["score"]) == {"standard", "reward_low_fp", "reward_low_fn"}
    table = pd.read_csv(out / "bursts.csv")
    assert table["onset"].sum() == 3
    assert len(table) == 4000 - 600 - 0
    assert (out / "bursts.png").read_bytes()[:4] == b"\x89PNG"
    assert "| promcast |" in (out / "report.md").read_text()


def test_a_bursts_replay_without_labels_reports_no_scores(tmp_path) -> None:
    csv, _ = _spiky_csv(tmp_path)
    result = run_bursts("spiky", regularise(load_csv(csv), None, max_gap=None), BurstParams(), fast=True)
    assert result.detections.promcast == 3
    assert result.score is None
    assert result.baselines is None
    assert set(document(result)).isdisjoint({"windows", "score", "baselines", "series"})  # left out of metrics.json


@pytest.mark.parametrize(
    ("flags_", "named"),
    [(["--threshold", "-1"], "threshold"), (["--persistence", "0"], "persistence"), (["--spike", "0.25"], "spike")],
)
def test_bad_burst_settings_exit_2_naming_the_setting(tmp_path, capsys, flags_, named) -> None:
    csv, _ = _spiky_csv(tmp_path)
    assert main(["bursts", "--input", str(csv), "--out", str(tmp_path / "o"), "--fast", *flags_]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_score_is_measured_against_the_widest_band(tmp_path) -> None:
    """A value above every 0.8 band of the forecasts that covered it but inside every 0.95 band scores no burst;
    a value above every 0.95 band scores the median, over those forecasts, of its distance above the 0.95 upper
    bound in 0.95 band widths, computed here from the published bands."""
    values = _sine(320)
    job, source, metrics = _job(tmp_path, values)
    assert job.target.levels == [0.8, 0.95]
    published = {}

    def cycle(i: int) -> float:
        source.at = START + i * STEP
        assert job().ok
        fc = metrics.snapshot()[0]["t"]
        published[i] = {lv: (lo[0].copy(), hi[0].copy()) for lv, (lo, hi) in fc.bounds.items()}
        assert fc.burst_score is not None
        return float(fc.burst_score[0])

    def covering(t: int, level: float, side: int) -> np.ndarray:
        """The band edge at time t of each forecast that covered it (made 1..12 steps before)."""
        return np.array([published[t - h][level][side][h - 1] for h in range(1, 13)])

    for i in range(100, 180):
        cycle(i)
    above_80, below_95 = covering(180, 0.8, 1).max(), covering(180, 0.95, 1).min()
    assert above_80 < below_95  # room between the bands
    values[180] = (above_80 + below_95) / 2
    assert covering(180, 0.95, 0).max() < values[180]
    assert cycle(180) == 0.0

    for i in range(181, 200):
        cycle(i)
    lo, hi = covering(200, 0.95, 0), covering(200, 0.95, 1)
    values[200] = hi.max() + 0.5
    expected = float(np.median((values[200] - hi) / (hi - lo)))
    assert expected > 1.0
    assert cycle(200) == pytest.approx(expected, rel=1e-9)
