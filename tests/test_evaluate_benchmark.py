"""The benchmark reproduces BENCHMARK.md's baseline figures and the README's ETTh1 persistence figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecaster.evaluation import benchmark

from .conftest import shared_data

BASELINES = ["naive", "seasonal_naive", "ar"]
TRAINING: dict[str, object] = {}  # no overrides: each model trains with its own defaults


def test_baselines_reproduce_benchmark_md() -> None:
    name = "nab_ec2_cpu_825cc2_5m"
    reg = benchmark.load_trace(shared_data(f"{name}.csv").parent, name)
    result = benchmark.run_trace(reg, BASELINES, TRAINING)
    for model in BASELINES:
        expected = benchmark.PEERS[model][benchmark.TRACES.index(name)]
        assert result["models"][model]["z_mae"] == pytest.approx(expected, abs=5e-5), model


def test_informer_persistence_matches_the_readme() -> None:
    reg = benchmark.load_trace(shared_data("ETTh1.csv").parent, "ETTh1")
    result = benchmark.run_informer(reg, ["naive"], 96, TRAINING, fast=False)
    for horizon, (mse, mae) in benchmark.INFORMER_PUBLISHED["last value repeated"].items():
        got = result[str(horizon)]["models"]["naive"]
        assert (round(got["mse"], 3), round(got["mae"], 3)) == (mse, mae)
        assert result[str(horizon)]["windows"] == 2880 - horizon + 1


def test_benchmark_exits_clearly_without_the_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert benchmark.main(["--data", str(tmp_path / "absent"), "--json", str(tmp_path / "b.json")]) == 2
    assert "the shared traces are not in" in capsys.readouterr().err
