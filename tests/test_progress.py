"""Long commands show their progress on stderr: a bar on a terminal, one line a stage off one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promcast.daemon.cli import main
from promcast.forecaster.progress import Stages, stderr_lines
from promcast.forecaster.synthetic import bursty


def test_off_a_terminal_each_stage_is_one_line_and_no_bar(capsys: pytest.CaptureFixture[str]) -> None:
    with Stages(2, "job", stderr_lines("promcast job"), terminal=False) as stages:
        stages.stage("fitting")
        stages.stage("writing report")
    assert capsys.readouterr().err == "promcast job [1/2] fitting\npromcast job [2/2] writing report\n"


def test_on_a_terminal_a_bar_names_the_stage_and_no_line_is_emitted(capsys: pytest.CaptureFixture[str]) -> None:
    emitted: list[str] = []
    with Stages(2, "job", lambda _n, _total, what: emitted.append(what), terminal=True) as stages:
        stages.stage("fitting")
        stages.stage("writing report")
    err = capsys.readouterr().err
    assert "\r" in err  # tqdm's redraws
    assert "2/2" in err
    assert "writing report" in err
    assert emitted == []


def test_backtest_says_each_stage_on_stderr_and_keeps_stdout_for_its_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "load.csv"
    bursty(1500, "5min", seed=1).rename("value").rename_axis("timestamp").to_csv(csv)
    assert main(["backtest", "--input", str(csv), "--out", str(tmp_path / "out"), "--fast"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"promcast backtest [1/4] reading {csv}",
        "promcast backtest [2/4] fitting mlp, forecasting",
        "promcast backtest [3/4] replaying 4 policies at 5 levels",
        "promcast backtest [4/4] writing report",
    ]
    assert "[1/4]" not in captured.out


def test_train_logs_each_stage_as_a_json_line_off_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = {"name": "cpu", "query": "demo", "model": "ar", "history": "PT12H"}
    config = tmp_path / "promcast.yaml"
    config.write_text(json.dumps({"source": "demo", "model_dir": str(tmp_path / "models"), "targets": [target]}))
    assert main(["train", "--target", "cpu", "--config", str(config), "--dry-run"]) == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.err.splitlines()]  # every line a JSON object
    stages = [(e["stage"], e["stages"], e["doing"]) for e in events if e["event"] == "train_stage"]
    assert [s[:2] for s in stages] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert stages[1][2] == "fitting the ar challenger"
    assert captured.out.startswith("would promote") or captured.out.startswith("kept cpu")
