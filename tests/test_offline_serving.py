"""The offline replays in a serving install: ``promcast backtest`` and ``promcast bursts`` replay the pretrained
model (``--model pretrained``) or a stored artifact (``--artifact DIR``) as loaded, on the NumPy runtime, without
torch; and without matplotlib they write their report less its figures, and say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.cli import main
from promcast.daemon.cycle.autoscale import Autoscaler, Scaling, recommend
from promcast.daemon.models.store import ModelStore
from promcast.daemon.offline.backtest import Backtest, run_backtest
from promcast.daemon.offline.replay_model import load_model
from promcast.forecaster import PRETRAINED, Forecaster, load_pretrained
from promcast.forecaster.artifact import read_artifact, write_artifact
from promcast.forecaster.data import regularise
from promcast.forecaster.numpy_runtime import load_frozen
from promcast.forecaster.synthetic import bursty

ROOT = Path(__file__).resolve().parents[1]
NOTORCH = Path(__file__).parent / "support" / "notorch"  # its sitecustomize makes `import torch` fail
# A sitecustomize that makes `import matplotlib` fail as where it was never installed, then runs notorch's: one
# interpreter reads one sitecustomize, the first on its path.
NO_PLOTS = f"""
import importlib.abc
import runpy
import sys


class _NoMatplotlib(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NoMatplotlib())
runpy.run_path({str(NOTORCH / "sitecustomize.py")!r})
"""
N = 2000  # points of the backtest's series: 1600 before the replay (70 % + 10 %), 389 origins after
PLOTS_LINE = "pip install 'promcast[plots]'"


def _csv(tmp_path: Path, points: int = N, seed: int = 4) -> Path:
    csv = tmp_path / "bursty.csv"
    bursty(points, step="5min", seed=seed).rename("value").rename_axis("timestamp").to_csv(csv)
    return csv


def _windows(values: np.ndarray, origins: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` points before each origin, built here: (N, length)."""
    return np.stack([values[o - length : o] for o in origins])


def _replayed(values: np.ndarray) -> np.ndarray:
    """The backtest's origins: every step whose 12 targets lie in the last 20 %."""
    return np.arange(int(len(values) * 0.7) + int(len(values) * 0.1), len(values) - 12 + 1)


def _run(env_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(env_path)}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)


def _no_plots(tmp_path: Path) -> Path:
    folder = tmp_path / "noplots"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(NO_PLOTS)
    return folder


def test_backtest_replays_the_pretrained_model_as_it_forecasts(tmp_path, capsys) -> None:
    csv = _csv(tmp_path)
    out = tmp_path / "out"
    assert main(["backtest", "--input", str(csv), "--model", "pretrained", "--out", str(out)]) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    values = pd.read_csv(csv)["value"].to_numpy()
    origins = _replayed(values)
    assert metrics["replay"]["steps"] == len(origins)
    model = load_pretrained()
    truth = np.stack([values[o : o + 12] for o in origins])
    expected = np.mean(np.abs(model.predict(_windows(values, origins, 300)) - truth))
    assert metrics["accuracy"]["model"]["mae"] == pytest.approx(expected, rel=1e-9)
    naive = np.mean(np.abs(values[origins - 1][:, None] - truth))
    assert metrics["accuracy"]["naive"]["mae"] == pytest.approx(naive, rel=1e-9)
    assert abs(expected - naive) > 0.01 * naive  # the model's row is no copy of naive's
    assert metrics["model"]["name"] == "pretrained"
    assert metrics["model"]["fit_points"] == 0
    assert metrics["model"]["artifact"] == str(PRETRAINED)
    assert "not fitted" in (out / "report.md").read_text()


def test_the_forecast_policy_scales_on_the_pretrained_models_own_upper_bound() -> None:
    reg = regularise(bursty(N, step="5min", seed=4), None, max_gap=None)
    s = Scaling(float(np.mean(reg.values)) / 5, startup_steps=3, scale_in_steps=2)
    frozen = load_model("pretrained", None)
    assert frozen is not None
    result = run_backtest("bursty", reg, Backtest(s, level=0.9, frozen=frozen))
    origins, last = result.series.origins, result.series.last
    np.testing.assert_array_equal(origins, _replayed(reg.values))
    _, bands = load_pretrained().predict_interval(_windows(reg.values, origins, 300), (0.9,))
    expected = Autoscaler(s).run(recommend(bands[0.9][1], last, s), int(np.ceil(last[0] / s.capacity_per_replica)))
    np.testing.assert_array_equal(result.series.replays["forecast"].requested, expected.requested)


def test_bursts_scores_against_the_pretrained_models_bands(tmp_path, capsys) -> None:
    n = 4000
    rng = np.random.default_rng(7)
    index = pd.date_range("2024-01-01", periods=n, freq="5min")
    values = 50 + 20 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 1.0, n)
    for at in (1500, 2500, 3500):
        values[at : at + 3] += 40.0
    csv = tmp_path / "spiky.csv"
    pd.DataFrame({"timestamp": index, "value": values}).to_csv(csv, index=False)
    out = tmp_path / "out"
    assert main(["bursts", "--input", str(csv), "--model", "pretrained", "--out", str(out)]) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["name"] == "pretrained"
    assert metrics["fit_points"] == 600  # the same probationary rows as a fitted model's
    table = pd.read_csv(out / "bursts.csv", parse_dates=["timestamp"]).set_index("timestamp")
    t = 2000  # a step of the scored part: its one-step-ahead band is the forecast from the 300 points before it
    point, bands = load_pretrained().predict_interval(values[None, t - 300 : t], (0.95,))
    row, p = table.loc[index[t]], point[0, 0]
    # The published band is the model's, scaled around its point by the series' own width factor: one factor for
    # both halves (float32 forward passes: one row alone and one in a block of 128 round differently).
    up, down = (row["upper"] - p) / (bands[0.95][1][0, 0] - p), (p - row["lower"]) / (p - bands[0.95][0][0, 0])
    assert up == pytest.approx(down, rel=1e-5)
    inside = (table["lower"] <= table["value"]) & (table["value"] <= table["upper"])
    assert inside.mean() == pytest.approx(0.95, abs=0.02)  # the series' own coverage, counted here
    # each injected burst, flagged at its second step (persistence 2); besides, at most one echo a burst, within a
    # horizon (12 steps) after it, where forecasts made as the burst entered their windows still cover the step
    bursts = [str(index[at + 1]) for at in (1500, 2500, 3500)]
    assert [t for t in metrics["flagged"] if t in bursts] == bursts
    others = set(metrics["flagged"]) - set(bursts)
    echoes = [others & {str(index[at + k]) for k in range(3, 3 + 12)} for at in (1500, 2500, 3500)]
    assert max(len(e) for e in echoes) <= 1
    assert others == set().union(*echoes)


def test_without_torch_or_matplotlib_the_replays_write_their_reports_less_the_figures(tmp_path) -> None:
    no_plots = _no_plots(tmp_path)
    for module in ("torch", "matplotlib"):
        cut = _run(no_plots, "-c", f"import {module}")
        assert f"No module named '{module}'" in cut.stderr
    csv = _csv(tmp_path, 4000, seed=5)
    runs = {
        "backtest": ("metrics.json", "report.md"),
        "bursts": ("metrics.json", "bursts.csv", "report.md"),
    }
    for command, files in runs.items():
        out = tmp_path / command
        done = _run(
            no_plots, "-m", "promcast", command, "--input", str(csv), "--model", "pretrained", "--out", str(out)
        )
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in out.iterdir()) == sorted(files)
        assert "](" not in (out / "report.md").read_text()  # no link to a figure
        (line,) = [ln for ln in done.stderr.splitlines() if "figures skipped" in ln]
        assert PLOTS_LINE in line


def _ar_artifact(tmp_path: Path, step: str) -> Path:
    """An AR model fitted on another bursty series, published in a model store: its version folder."""
    store = ModelStore(tmp_path / "models", "t")
    train = bursty(1500, step=step, seed=9)
    store.publish(Forecaster("ar", window=24, step=pd.Timedelta(step), gate=None).fit(train))
    return store.current_path().resolve()


def test_backtest_replays_a_stored_artifact_without_torch(tmp_path) -> None:
    artifact = _ar_artifact(tmp_path, "5min")
    csv = _csv(tmp_path)
    out = tmp_path / "out"
    done = _run(
        NOTORCH, "-m", "promcast", "backtest", "--input", str(csv), "--artifact", str(artifact), "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    values = pd.read_csv(csv)["value"].to_numpy()
    origins = _replayed(values)
    truth = np.stack([values[o : o + 12] for o in origins])
    expected = np.mean(np.abs(load_frozen(artifact).predict(_windows(values, origins, 24)) - truth))
    assert metrics["accuracy"]["model"]["mae"] == pytest.approx(expected, rel=1e-9)
    assert metrics["model"]["artifact"] == str(artifact)
    assert (out / "capacity.png").read_bytes()[:4] == b"\x89PNG"  # matplotlib is there: the figures are drawn


def test_an_artifact_of_another_step_is_refused(tmp_path, capsys) -> None:
    artifact = _ar_artifact(tmp_path, "1min")
    rc = main(["bursts", "--input", str(_csv(tmp_path)), "--artifact", str(artifact), "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "steps of 0 days 00:01:00, the series has steps of 0 days 00:05:00" in capsys.readouterr().err


def test_an_artifact_without_a_numpy_forward_is_refused_naming_why(tmp_path, capsys) -> None:
    arrays, meta = read_artifact(PRETRAINED)
    lstm = write_artifact(tmp_path / "lstm", arrays, {**meta, "model": {**meta["model"], "name": "lstm"}})
    rc = main(["backtest", "--input", str(_csv(tmp_path)), "--artifact", str(lstm), "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "model 'lstm' has no NumPy forward" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_folder_without_an_artifact_exits_1_naming_it(tmp_path, capsys) -> None:
    rc = main(["bursts", "--input", str(_csv(tmp_path)), "--artifact", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "no meta.json" in capsys.readouterr().err
