"""Scaling policies (daemon.cycle.autoscale) and ``promcast backtest``: the reactive policy against a sequence
computed by hand, the forecast policy's floor, bad settings, and the daemon's gauge computed by the same code."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from promcast.daemon.cli import main
from promcast.daemon.cycle.autoscale import Autoscaler, Scaling, needed, recommend, replay_metrics, scaling_for
from promcast.daemon.cycle.job import ForecastJob
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.models.serving import ModelHolder
from promcast.daemon.models.store import ModelStore
from promcast.daemon.offline.backtest import Backtest, run_backtest
from promcast.daemon.offline.backtest_report import backtest_report
from promcast.daemon.offline.report import document, write_report
from promcast.daemon.settings import TargetSettings
from promcast.forecaster import Forecaster
from promcast.forecaster.data import regularise
from promcast.forecaster.synthetic import bursty

from .support.http import samples
from .support.scripted import START, STEP, Scripted


def test_reactive_policy_on_a_step_function_matches_the_hand_computed_sequence() -> None:
    s = Scaling(10.0, min_replicas=1, max_replicas=10, startup_steps=2, scale_in_steps=3)
    demand = np.array([10.0] * 3 + [35.0] * 5 + [10.0] * 6)
    seen = np.concatenate([[10.0], demand[:-1]])  # each step decides on the value before it
    desired = needed(seen, s)
    np.testing.assert_array_equal(desired, [1, 1, 1, 1, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1])
    replay = Autoscaler(s).run(desired, initial=1)
    # Scale out at once at step 4; the 3 new replicas serve from step 6 (start-up 2); the scale-in waits until the
    # window of 3 steps holds no 4 (step 11).
    np.testing.assert_array_equal(replay.requested, [1, 1, 1, 1, 4, 4, 4, 4, 4, 4, 4, 1, 1, 1])
    np.testing.assert_array_equal(replay.serving, [1, 1, 1, 1, 1, 1, 4, 4, 4, 4, 4, 1, 1, 1])
    m = replay_metrics(demand, replay, s, step_hours=1.0)
    assert m["under_provisioned_steps"] == 3  # steps 3, 4 and 5: 35 against 10
    assert m["unserved"] == pytest.approx(75.0)
    assert m["replica_hours"] == pytest.approx(35.0)
    assert m["scale_events"] == 2
    assert m["over_provisioning"] == pytest.approx((5 + 5 + 30 + 30 + 30) / 10 / 14)


def test_a_scale_in_removes_the_replicas_still_starting_first() -> None:
    s = Scaling(1.0, min_replicas=0, startup_steps=3, scale_in_steps=1)
    replay = Autoscaler(s).run(np.array([5, 2, 2, 2]), initial=2)
    np.testing.assert_array_equal(replay.requested, [5, 2, 2, 2])
    np.testing.assert_array_equal(replay.serving, [2, 2, 2, 2])  # the two serving replicas were kept


def test_the_recommendation_never_falls_below_what_the_actual_load_needs() -> None:
    s = Scaling(10.0, target_utilization=0.8, max_replicas=50, startup_steps=3)
    rng = np.random.default_rng(3)
    upper, actual = rng.uniform(0, 200, (500, 12)), rng.uniform(0, 200, 500)
    got = recommend(upper, actual, s)
    np.testing.assert_array_equal(got, np.maximum(needed(actual, s), needed(upper[:, :4].max(axis=1), s)))
    assert (got >= needed(actual, s)).all()
    np.testing.assert_array_equal(recommend(np.full((1, 12), 5.0), np.array([95.0]), s), [12.0])  # 95 / 8


def test_the_recommendation_covers_the_forecast_up_to_the_start_up_delay() -> None:
    """A replica asked for now serves 3 steps from now: a peak at h = 4 (3 steps ahead of the next) is asked for
    now; a peak at h = 10 is asked for later, when it is that close."""
    s = Scaling(10.0, startup_steps=3)
    upper = np.full((2, 12), 10.0)
    upper[0, 3], upper[1, 9] = 80.0, 80.0
    np.testing.assert_array_equal(recommend(upper, np.array([10.0, 10.0]), s), [8.0, 1.0])


def _bursty(points: int = 3000) -> pd.Series:
    return bursty(points, step="5min", seed=4)


def test_backtest_forecast_policy_keeps_the_reactive_floor_and_writes_its_report(tmp_path) -> None:
    reg = regularise(_bursty(), None, max_gap=None)
    capacity = float(np.mean(reg.values)) / 5
    bt = Backtest(Scaling(capacity, startup_steps=3, scale_in_steps=2), level=0.5, fast=True)
    result = run_backtest("bursty", reg, bt)
    last, replays = result.series.last, result.series.replays
    floor = needed(last, bt.scaling)
    for name in ("forecast", "forecast_naive", "forecast_linear"):
        requested = replays[name].requested
        assert (requested >= floor).all(), name  # never below what the load seen so far needs
        falls = np.flatnonzero(np.diff(requested) < 0) + 1
        assert (requested[falls] >= floor[falls]).all()  # no scale-in while the actual load needs the count
    # At the same level, the forecast policies hold at least the reactive count, so they miss no more steps.
    reactive = result.policies["reactive"]
    assert all(
        result.policies[p].under_provisioned_steps <= reactive.under_provisioned_steps
        for p in ("forecast", "forecast_naive", "forecast_linear")
    )
    assert reactive.under_provisioned_steps > 0  # the bursts do catch the reactive policy out
    paths = write_report(tmp_path, backtest_report(result))
    assert [p.name for p in paths] == ["metrics.json", "report.md", "capacity.png", "tradeoff.png"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(document(result)))
    assert "series" not in metrics  # the replay's arrays stay out of the report
    assert metrics["policies"]["forecast"]["scale_events"] == result.policies["forecast"].scale_events


def test_backtest_command_writes_metrics_report_and_plots(tmp_path, capsys) -> None:
    csv = tmp_path / "bursty.csv"
    _bursty(2000).rename("value").rename_axis("timestamp").to_csv(csv)
    out = tmp_path / "out"
    rc = main(["backtest", "--input", str(csv), "--out", str(out), "--fast", "--startup-steps", "2"])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["policies"]) == {"reactive", "forecast", "forecast_naive", "forecast_linear"}
    for m in metrics["policies"].values():
        assert set(m) >= {"under_provisioned_steps", "unserved", "replica_hours", "over_provisioning", "scale_events"}
    assert metrics["replay"]["steps"] == 2000 - int(2000 * 0.7) - int(2000 * 0.1) - 12 + 1
    assert metrics["settings"]["capacity_per_replica"] == pytest.approx(
        float(pd.read_csv(csv)["value"].iloc[:1600].mean()) / 5
    )
    assert (out / "capacity.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "tradeoff.png").stat().st_size > 1000
    assert "| forecast |" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--capacity-per-replica", "0"], "capacity_per_replica"),
        (["--capacity-per-replica", "-3"], "capacity_per_replica"),
        (["--min-replicas", "5", "--max-replicas", "2"], "min_replicas"),
        (["--startup-steps", "12"], "startup_steps"),
        (["--level", "1.5"], "level"),
    ],
)
def test_bad_backtest_settings_exit_2_naming_the_setting(tmp_path, capsys, flags, named) -> None:
    csv = tmp_path / "s.csv"
    _bursty(400).rename("value").rename_axis("timestamp").to_csv(csv)
    rc = main(["backtest", "--input", str(csv), "--out", str(tmp_path / "o"), "--fast", *flags])
    assert rc == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_the_daemons_gauge_is_the_backtests_recommendation_for_the_same_forecast(tmp_path) -> None:
    """A fixed AR model of a sine, then a jump the model does not follow: the gauge is ``recommend`` on the
    published upper bound and the last actual value, so the reactive floor (the jump) sets it."""
    rng = np.random.default_rng(0)
    train = pd.Series(10.0 + 5.0 * np.sin(2 * np.pi * np.arange(2000) / 24) + rng.normal(0, 0.05, 2000))
    train.index = pd.date_range(START - 2100 * STEP, periods=2000, freq=STEP, tz="UTC")
    target = TargetSettings(
        name="t",
        query="q",
        window=24,
        model="ar",
        history=timedelta(days=1),
        capacity_per_replica=0.02,  # fine-grained, so that the level chosen shows in the count
        target_utilization=0.5,
        max_replicas=100_000,
        levels=[0.8, 0.95],
        replicas_level=0.8,
        guard={"enabled": False},
    )
    store = ModelStore(tmp_path, "t")
    store.publish(Forecaster("ar", window=24, step=STEP, gate=None).fit(train))
    values = 10.0 + 5.0 * np.sin(2 * np.pi * np.arange(200) / 24)
    values[150] = 90.0  # one step far above what the model expects
    source = Scripted(values)
    metrics = Metrics(CollectorRegistry(), ["t"], clock=lambda: source.now().timestamp())
    job = ForecastJob(target, source, ModelHolder(store, target), metrics, 3.0)
    assert scaling_for(target) is not None
    floor_seen, level_seen = False, False
    for i in (100, 150):
        source.at = START + i * STEP
        assert job().ok
        fc = metrics.snapshot()[0]["t"]
        assert fc.replicas is not None
        expected = recommend(fc.bounds[0.8][1], np.array([values[i]]), scaling_for(target))
        np.testing.assert_array_equal(fc.replicas, expected)
        # by hand: startup_steps defaults to the whole horizon, so the count covers the larger of the 0.8 upper
        # bound's peak over the 12 steps and the last value, at 0.02 x 0.5 load a replica
        assert fc.replicas[0] == np.ceil(max(fc.bounds[0.8][1].max(), values[i]) / (0.02 * 0.5))
        if i == 150:
            assert fc.replicas[0] == 9000  # the jump to 90 needs 90 / 0.01 replicas, whatever the forecast
        floor_seen |= bool(expected[0] > needed(fc.bounds[0.8][1].max(axis=1), scaling_for(target))[0])
        level_seen |= bool(expected[0] != recommend(fc.bounds[0.95][1], np.array([values[i]]), scaling_for(target))[0])
        page = {
            tuple(sorted(s.items())): v
            for s, v in samples(metrics.exposition().decode(), "promcast_recommended_replicas")
        }
        assert page == {(("instance", "a"), ("target", "t")): float(expected[0])}
    assert floor_seen  # the jump's step was decided by the floor, which the old gauge lacked
    assert level_seen  # and replicas_level, not the widest level, set the other


def test_backtest_reads_a_targets_history_through_its_source(tmp_path, capsys) -> None:
    config = tmp_path / "promcast.yaml"
    config.write_text(
        "source: demo\ndemo: {series: 2, workload: bursty}\n"
        "targets:\n  - {name: web, query: promcast_demo_workload, history: 1d, capacity_per_replica: 20,"
        " max_replicas: 9}\n"
    )
    out = tmp_path / "out"
    rc = main(["backtest", "--config", str(config), "--target", "web", "--out", str(out), "--fast"])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["input"].startswith("web ")
    assert metrics["points"] in (1440, 1441)  # a day of one-minute steps: the target's history
    assert metrics["settings"]["capacity_per_replica"] == 20
    assert metrics["settings"]["max_replicas"] == 9
    assert main(["backtest", "--config", str(config), "--target", "nope", "--out", str(out)]) == 2
    rc = main(["backtest", "--config", str(config), "--target", "web", "--since", "PT2H", "--out", str(out), "--fast"])
    assert rc == 2
    assert "--since 'PT2H'" in capsys.readouterr().err
    rc = main(["backtest", "--config", str(config), "--target", "web", "--since", "PT20H", "--out", str(out), "--fast"])
    assert rc == 0
    assert json.loads((out / "metrics.json").read_text())["points"] in (1200, 1201)


def test_a_start_up_delay_as_long_as_the_horizon_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"replicas_level 0\.9 must be one of levels"):
        TargetSettings(name="t", query="q", capacity_per_replica=1.0, replicas_level=0.9)
    with pytest.raises(ValueError, match="startup_steps 12 must be shorter than the horizon 12"):
        TargetSettings(name="t", query="q", capacity_per_replica=1.0, startup_steps=12)
    assert scaling_for(TargetSettings(name="t", query="q", capacity_per_replica=1.0, startup_steps=4)) == Scaling(
        1.0, startup_steps=4
    )


def test_the_forecast_policy_scales_on_the_models_own_upper_bound() -> None:
    """The forecast policy's replay is the autoscaler following ``recommend`` on the model's own calibrated upper
    bound at the level: the model fitted again here on the first 80 % (2,400 of 3,000 points), as the backtest
    fits it. Naive's split-conformal bands give another replay."""
    from promcast.forecaster import DEFAULT_MODEL, DEFAULT_WINDOW
    from promcast.forecaster.offline import fit_first_part

    reg = regularise(_bursty(), None, max_gap=None)
    capacity = float(np.mean(reg.values)) / 5
    s = Scaling(capacity, startup_steps=3, scale_in_steps=2)
    result = run_backtest("bursty", reg, Backtest(s, level=0.9, fast=True, seed=0))
    origins, last, replays = result.series.origins, result.series.last, result.series.replays
    assert origins[0] == 2400
    assert origins[-1] == 3000 - 12
    np.testing.assert_array_equal(last, reg.values[origins - 1])

    history = pd.Series(reg.values[:2400], index=pd.date_range(reg.start, periods=2400, freq=reg.step))
    model, _ = fit_first_part(history, DEFAULT_MODEL, DEFAULT_WINDOW, 12, 300 / 2400, fast=True, seed=0)
    assert model.calibration is not None  # the bands are the model's own
    x = reg.values[origins[:, None] - model.input_length + np.arange(model.input_length)]
    _, bands = model.predict_interval(x, (0.9,))
    upper = bands[0.9][1]
    initial = int(np.ceil(last[0] / capacity))
    expected = Autoscaler(s).run(recommend(upper, last, s), initial)
    np.testing.assert_array_equal(replays["forecast"].requested, expected.requested)
    np.testing.assert_array_equal(replays["forecast"].serving, expected.serving)
    # naive's bands ask for other counts: the policies differ, so the comparison shows the model's worth
    assert not np.array_equal(replays["forecast"].requested, replays["forecast_naive"].requested)
