"""`promcast evaluate`: the protocol, the measures, and a fast end-to-end run that writes the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.forecaster.evaluation import cli
from promcast.forecaster.evaluation.fitting import plan_model
from promcast.forecaster.evaluation.measures import (
    best_shift,
    convergence,
    lag_per_horizon,
    roughness,
    smoothness,
    stability,
    worst_windows,
)
from promcast.forecaster.protocol import (
    Borders,
    Protocol,
    error_metrics,
    inputs_at,
    make_task,
    origin_stride,
    rolling_origins,
    score,
    season_for,
    targets_at,
    window_for,
)
from promcast.forecaster.scalers import Scaler

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_per_horizon_mse_equals_a_hand_computation() -> None:
    truth = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    pred = np.array([[2.0, 2.0, 1.0], [4.0, 8.0, 5.0]])
    m = error_metrics(pred, truth)
    # errors: [1, 0, -2] and [0, 3, -1]
    assert m["mse_per_h"] == pytest.approx([(1 + 0) / 2, (0 + 9) / 2, (4 + 1) / 2])
    assert m["mae_per_h"] == pytest.approx([(1 + 0) / 2, (0 + 3) / 2, (2 + 1) / 2])
    assert m["mse"] == pytest.approx((1 + 0 + 4 + 0 + 9 + 1) / 6)
    assert m["mae"] == pytest.approx((1 + 0 + 2 + 0 + 3 + 1) / 6)


def test_score_is_on_the_z_scale_and_in_original_units() -> None:
    scaler = Scaler("standard", 10.0, 2.0)
    truth, pred = np.full((3, 2), 10.0), np.full((3, 2), 14.0)
    s = score(pred, truth, scaler)
    assert s["original"]["mae"] == pytest.approx(4.0)
    assert s["original"]["mse"] == pytest.approx(16.0)
    assert s["z"]["mae"] == pytest.approx(2.0)
    assert s["z"]["mse"] == pytest.approx(4.0)


def test_borders_origins_and_windows_follow_benchmark_md() -> None:
    b = Borders.from_fractions(4034, Protocol())
    assert (b.train_end, b.val_end, b.test_points) == (2823, 3226, 808)
    assert origin_stride(808, 1500) == 1
    assert origin_stride(17857, 1500) == 11
    origins = rolling_origins(100, 130, horizon=12, stride=5)
    assert origins.tolist() == [100, 105, 110, 115]  # the last target of 115 is 126 < 130; 120 would need 131
    values = np.arange(200.0)
    assert inputs_at(values, origins, 3)[0].tolist() == [97.0, 98.0, 99.0]  # only data before the origin
    assert targets_at(values, origins, 2)[-1].tolist() == [115.0, 116.0]
    assert window_for(pd.Timedelta("5min")) == 288
    assert window_for(pd.Timedelta("1h")) == 48
    assert window_for(pd.Timedelta("30s")) == 96
    assert season_for(pd.Timedelta("30s")) is None


def test_make_task_scales_on_train_only_and_drops_origins_without_history() -> None:
    values = np.concatenate([np.zeros(70) + 1.0, np.arange(30.0)])
    values[:70:2] = 3.0  # train mean 2, std 1
    task = make_task(values, pd.Timestamp("2024-01-01"), pd.Timedelta("1min"), Protocol(horizon=2), stride=1)
    assert (task.scaler.shift, task.scaler.scale) == pytest.approx((2.0, 1.0))
    assert task.origins[0] == 80
    assert task.origins[-1] == 98
    with pytest.raises(ValueError, match="history"):
        make_task(values, pd.Timestamp("2024-01-01"), pd.Timedelta("1min"), Protocol(horizon=2), 1, min_history=99)


def test_seasonal_naive_without_a_season_is_plain_naive() -> None:
    assert plan_model("seasonal_naive", 96, None).model == "naive"
    plan = plan_model("seasonal_naive", 24, 288)
    assert (plan.model, plan.window, plan.hparams) == ("seasonal_naive", 288, {"period": 288})


@pytest.mark.parametrize("shift", [0, 3, -2, 7])
def test_lag_measure_recovers_a_known_shift(shift: int) -> None:
    series = np.random.default_rng(0).normal(size=500).cumsum()
    times = np.arange(50, 450)
    assert best_shift(series[times - shift], times, series, max_shift=10) == shift


def test_naive_lags_by_its_horizon_step() -> None:
    series = np.random.default_rng(1).normal(size=600).cumsum()
    origins = np.arange(100, 500, 3)
    pred = np.repeat(series[origins - 1][:, None], 12, axis=1)  # the last value, repeated
    assert lag_per_horizon(pred, origins, series, max_shift=24) == list(range(1, 13))


def test_smoothness_is_zero_for_a_straight_line() -> None:
    line = np.tile(2.5 * np.arange(12.0) - 4.0, (5, 1))
    assert roughness(line) == 0.0
    wiggly = line + np.array([0.0, 1.0] * 6)
    s = smoothness(line, wiggly)
    assert s["forecast"] == 0.0
    assert s["truth"] == pytest.approx(2.0)
    assert s["ratio"] == 0.0


def test_convergence_and_stability() -> None:
    c = convergence([1.0, 0.5, 0.3, 0.2, 0.2, 0.205], [1.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    assert (c["epochs"], c["seconds"], c["best_epoch"]) == (4, 5.0, 4)  # 0.2 <= 0.2 * 1.05 first at epoch 4
    s = stability([0.1, 0.2, 0.3])
    assert s["std"] == pytest.approx(0.1)
    assert s["range"] == pytest.approx(0.2)
    assert s["seeds"] == 3


def test_worst_windows_are_distinct_events() -> None:
    truth = np.zeros((20, 4))
    pred = np.zeros((20, 4))
    pred[5:8] = 3.0  # one bad event spanning three overlapping origins
    pred[15] = 1.0
    origins = np.arange(20)
    assert worst_windows(pred, truth, 2).tolist() == [5, 6]
    assert worst_windows(pred, truth, 2, origins).tolist() == [5, 15]


@pytest.fixture(scope="module")
def fast_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluate")
    argv = ["evaluate", "--synthetic", "diurnal", "--points", "1500", "--step", "10min", "--fast", "--seeds", "3"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    return out


def test_fast_evaluate_writes_report_and_valid_pngs(fast_report: Path) -> None:
    report = (fast_report / "report.md").read_text()
    images = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", report)
    for name in ("series.png", "sample_window.png", "single_step_lstm.png", "forecasts_w24.png", "worst_w24.png"):
        assert name in images
    for name in images:
        assert (fast_report / name).read_bytes()[:8] == PNG_MAGIC, name
    assert "promcast evaluate --synthetic diurnal" in report
    for measure in ("convergence", "stability", "smoothness", "lag", "peaks"):
        assert f"**{measure}**" in report


def test_fast_evaluate_metrics_hold_every_model_with_12_steps(fast_report: Path) -> None:
    data = json.loads((fast_report / "metrics.json").read_text())
    models = data["windows"]["24"]["models"]
    assert set(models) == {"naive", "seasonal_naive", "ar", *cli.default_models()}
    for name, m in models.items():
        for scale in ("z", "original"):
            assert len(m[scale]["mse_per_h"]) == 12, name
            assert len(m[scale]["mae_per_h"]) == 12, name
            assert np.mean(m[scale]["mse_per_h"]) == pytest.approx(m[scale]["mse"])
    assert models["naive"]["measures"]["lag"]["per_h"] == list(range(1, 13))
    assert models["lstm"]["measures"]["stability"]["seeds"] == 3
    assert models["lstm"]["measures"]["convergence"]["epochs"] >= 1
    assert models["ar"]["measures"]["stability"] is None
    assert sum(m["default"] for m in models.values()) == 1
    assert len(data["single_step_lstm"]["z"]["mse_per_h"]) == 1
    intervals = models["gru"]["measures"]["intervals"]  # networks are calibrated on their validation windows
    for level in ("0.8", "0.95"):
        assert 0.0 <= intervals[level]["coverage"] <= 1.0
        assert intervals[level]["z_width"] > 0
    assert intervals["0.95"]["z_width"] > intervals["0.8"]["z_width"]
    assert "coverage 0.95" in (fast_report / "report.md").read_text()


def test_evaluate_says_its_plan_first_then_one_line_a_stage_off_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", "--synthetic", "diurnal", "--points", "600", "--step", "10min", "--fast", "--models", "mlp"]
    assert cli.main([*argv, "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()  # stderr is no terminal here
    assert "\r" not in captured.err  # no progress bar: it redraws itself with carriage returns
    plan, *stages = captured.err.splitlines()
    assert plan.startswith("promcast evaluate: plan: 1 network (mlp; tiny) and 3 baselines (naive, seasonal_naive, ar)")
    assert "1 seed per network; mlp at most 3 epochs of 10 batches" in plan
    assert "input window 24" in plan
    assert plan.endswith("test windows of 12 steps; 4 fits")
    assert stages == [
        "promcast evaluate [1/9] fitting naive",
        "promcast evaluate [2/9] scoring naive",
        "promcast evaluate [3/9] fitting seasonal_naive",
        "promcast evaluate [4/9] scoring seasonal_naive",
        "promcast evaluate [5/9] fitting ar",
        "promcast evaluate [6/9] scoring ar",
        "promcast evaluate [7/9] fitting mlp seed 1 of 1",
        "promcast evaluate [8/9] scoring mlp",
        "promcast evaluate [9/9] writing report",
    ]
    assert captured.out == f"wrote {tmp_path / 'report.md'} and {tmp_path / 'metrics.json'}\n"  # the result only


def test_evaluate_by_default_leaves_the_transformer_out_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from promcast.forecaster.evaluation import evaluate

    def stop(*_args: object, **_kwargs: object) -> None:
        raise ValueError("stopped before the work")

    monkeypatch.setattr(evaluate, "run_work", stop)  # the plan only
    assert cli.main(["evaluate", "--synthetic", "diurnal", "--points", "1200", "--out", str(tmp_path)]) == 1
    plan = capsys.readouterr().err.splitlines()[0]
    assert "4 networks (mlp, lstm, gru, lstm_1step)" in plan
    assert "1 seed per network; mlp at most " in plan  # the production default trains as it ships
    assert "; lstm, gru at most 10 epochs of 4 batches;" in plan
    assert plan.endswith("left out: transformer (--full or --models adds it)")


def test_evaluate_full_runs_every_network_with_three_seeds_and_its_own_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from promcast.forecaster.evaluation import evaluate

    def stop(*_args: object, **_kwargs: object) -> None:
        raise ValueError("stopped before the work")

    monkeypatch.setattr(evaluate, "run_work", stop)
    argv = ["evaluate", "--synthetic", "diurnal", "--points", "1200", "--full", "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    plan = capsys.readouterr().err.splitlines()[0]
    assert "5 networks (mlp, lstm, gru, transformer, lstm_1step)" in plan
    assert "3 seeds per network; mlp at most " in plan
    assert "; lstm, gru, transformer at most 50 epochs of all batches;" in plan
    assert plan.endswith("; 16 fits")  # the baselines once, 4 networks 3 times, the single-step LSTM once


def test_evaluate_rejects_a_bad_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", "--synthetic", "bursty", "--window", "week", "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    assert "--window 'week'" in capsys.readouterr().err


def test_evaluate_fits_every_model_with_the_scaler_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "minmax"
    args = ["evaluate", "--synthetic", "diurnal", "--points", "600", "--step", "10min", "--fast", "--seeds", "1"]
    assert cli.main([*args, "--models", "mlp", "ar", "--scaler", "minmax", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["scaler"] == "minmax"
    from promcast.forecaster.evaluation.evaluate import EvalConfig, evaluate
    from promcast.forecaster.synthetic import diurnal

    series = diurnal(600, "10min", seed=0)
    config = EvalConfig(models=("naive", "mlp"), windows=(24,), seeds=1, fast=True, scaler="minmax")
    result = evaluate("d", series.to_numpy(), series.index[0], pd.Timedelta("10min"), config)
    kinds = {run.forecaster.meta["scaler"]["kind"] for w in result.results for m in w.models.values() for run in m.runs}
    assert kinds == {"minmax"}
