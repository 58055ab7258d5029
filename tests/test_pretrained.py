"""The pretrained model that ships in the package : it loads and forecasts without torch, its
weights are the ones its model card names, it is free of level and unit, and it saw only the first 80 % of each
trace."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.cli import main
from promcast.forecaster import PRETRAINED, load_pretrained
from promcast.forecaster.artifact import WEIGHTS_FILE
from promcast.forecaster.protocol import Borders, Protocol

from .conftest import shared_data

BLOCKED = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
import numpy as np
from promcast.forecaster import load_pretrained
m = load_pretrained()
w = np.array(json.loads(open(sys.argv[1]).read())["input"])
point, bands = m.forecast_interval(w)
print(json.dumps({"values": point.tolist(), "upper": bands[0.95][1].tolist(), "torch": "torch" in sys.modules}))
"""
GOLDEN = Path(__file__).parent / "fixtures" / "pretrained_golden.json"


def _window(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 10 * np.sin(2 * np.pi * t / 288) + 0.02 * t + rng.normal(0, 1, n)


def test_load_pretrained_forecasts_with_torch_blocked() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCKED, str(GOLDEN)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["torch"] is False
    golden = json.loads(GOLDEN.read_text())  # the torch runtime's forecast of the same window
    np.testing.assert_allclose(out["values"], golden["forecast"], rtol=1e-5)
    np.testing.assert_allclose(out["upper"], golden["intervals"]["0.95"]["upper"], rtol=1e-5)


def test_the_weights_are_the_ones_the_model_card_names() -> None:
    card = (PRETRAINED.parent / "MODEL_CARD.md").read_text()
    (named,) = re.findall(r"sha256: ([0-9a-f]{64})", card)
    assert hashlib.sha256((PRETRAINED / WEIGHTS_FILE).read_bytes()).hexdigest() == named


def test_the_pretrained_model_is_free_of_level_and_unit() -> None:
    model = load_pretrained()
    assert model.step is None  # any step
    x = _window(model.input_length)[None, :]
    point, bands = model.predict_interval(x, (0.8, 0.95))
    for a, b in ((1e-3, 0.0), (1e6, 5e6), (3.0, -200.0)):
        p2, b2 = model.predict_interval(a * x + b, (0.8, 0.95))
        np.testing.assert_allclose(p2, a * point + b, rtol=1e-6, atol=1e-6 * abs(a) * 60)
        np.testing.assert_allclose(b2[0.95][1], a * bands[0.95][1] + b, rtol=1e-6, atol=1e-6 * abs(a) * 60)


def test_the_corpus_holds_only_the_first_80_percent_of_each_trace() -> None:
    parts = json.loads((PRETRAINED.parent / "corpus.json").read_text())
    traces = [p for p in parts if p["source"].startswith("../shared/data/")]
    assert len(traces) == 16
    assert not any(p["name"] == "ETTh1" for p in parts)
    for p in traces:
        b = Borders.from_fractions(p["points"], Protocol())
        assert (p["rows"], p["train_end"]) == (b.val_end, b.train_end), p["name"]
    _check_mixups(parts)


def _check_mixups(parts: list[dict]) -> None:
    """Every mixup is a weighted sum of segments from the training rows (never validation) of listed traces."""
    trains = {p["name"]: p["train_end"] for p in parts if p["source"].startswith("../shared/data/")}
    mixups = [p for p in parts if p["name"].startswith("mixup_")]
    assert mixups
    for p in mixups:
        terms = re.findall(r"([0-9.]+) x (\w+)\[(\d+)\.\.(\d+)\]", p["source"])
        assert len(terms) in (2, 3), p["source"]
        assert abs(sum(float(w) for w, *_ in terms) - 1) < 0.01, p["source"]
        assert p["train_end"] == p["rows"]  # no validation windows: they would be mixed training rows
        for _, name, first, last in terms:
            assert int(last) - int(first) + 1 == p["points"], p["source"]
            assert int(last) < trains[name], p["source"]


def test_the_mixups_are_cut_from_training_rows_only() -> None:
    from promcast.forecaster.pretrain import MIXUPS, build_corpus

    data = shared_data("nab_ec2_cpu_24ae8d_5m.csv").parent  # skips, saying why, without ../shared/data
    traces = ["nab_ec2_cpu_24ae8d_5m", "nab_ec2_cpu_53ea38_5m"]  # 2,822 training rows each, segments of 2,400
    parts = [dataclasses.asdict(p) for p in build_corpus(data, 300, 288, 12, 0, traces=traces)[2]]
    assert sum(p["name"].startswith("mixup_") for p in parts) == MIXUPS
    _check_mixups(parts)


@pytest.mark.parametrize("step", ["1min", "1h"])
def test_promcast_predict_serves_the_pretrained_model_at_any_step(tmp_path, capsys, step) -> None:
    index = pd.date_range("2024-01-01", periods=400, freq=step)
    csv = tmp_path / "s.csv"
    pd.DataFrame({"timestamp": index, "value": _window(400)}).to_csv(csv, index=False)
    assert main(["predict", "--model", "pretrained", "--input", str(csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step_seconds"] == pd.Timedelta(step).total_seconds()
    assert len(out["forecast"]) == 12
    assert pd.Timestamp(out["forecast"][0]["timestamp"]) == index[-1] + pd.Timedelta(step)


def test_fine_tuning_starts_from_the_pretrained_weights_and_learns_the_series() -> None:
    from promcast.forecaster import Forecaster, TrainConfig

    t = np.arange(3000)
    values = 100 + 30 * ((t % 40) < 10) + np.random.default_rng(3).normal(0, 1, 3000)  # a pulse every 40 steps
    series = pd.Series(values, index=pd.date_range("2024-01-01", periods=3000, freq="5min"))
    base = Forecaster.load(PRETRAINED)
    before = base.predict(np.ones((1, base.input_length)) + np.arange(base.input_length) / 100)
    n = base.input_length
    x = np.stack([values[i - n : i] for i in range(2400, 2988, 6)])
    y = np.stack([values[i : i + 12] for i in range(2400, 2988, 6)])
    # One step at a vanishing learning rate leaves the pretrained forecasts: the weights were its start.
    still = base.fine_tune(series.iloc[:2400], training=TrainConfig(epochs=1, lr=1e-9, max_batches=1, progress=False))
    np.testing.assert_allclose(still.predict(x), base.predict(x), rtol=1e-4)
    tuned = base.fine_tune(series.iloc[:2400])
    assert np.abs(tuned.predict(x) - y).mean() < 0.8 * np.abs(base.predict(x) - y).mean()
    assert not tuned.pretrained
    assert base.pretrained
    assert tuned.step == pd.Timedelta("5min")
    assert tuned.meta["training"]["fine_tuned_from"] == base.meta["weights_sha256"]
    np.testing.assert_array_equal(base.predict(np.ones((1, n)) + np.arange(n) / 100), before)  # base unchanged


def test_the_mixed_workload_gives_a_new_shape_for_every_seed() -> None:
    """The pretraining corpus's mixed series: one seed, one series; another seed, another shape."""
    from promcast.forecaster.synthetic import make_workload

    a, again = make_workload("mixed", 2400, "5min", seed=7), make_workload("mixed", 2400, "5min", seed=7)
    pd.testing.assert_series_equal(a, again)
    series = [make_workload("mixed", 2400, "5min", seed=s).to_numpy() for s in range(8)]
    for v in series:
        assert np.isfinite(v).all()
        assert v.min() >= 0
        assert abs(v.mean() - 50) < 1
        assert abs(v.std() - 10) < 1
    corr = np.corrcoef(np.stack(series))[np.triu_indices(8, 1)]
    assert np.abs(corr).max() < 0.9  # no two seeds give the same series up to scale


def test_pretrain_can_hold_traces_out_of_its_corpus() -> None:
    """benchmarks/pretrained_unseen.py's premise: a corpus built on some traces holds no window of the others."""
    from promcast.forecaster.pretrain import MIXED, MIXUPS, SYNTHETIC, build_corpus

    data = shared_data("nab_ec2_cpu_24ae8d_5m.csv").parent  # skips, saying why, without ../shared/data
    train, _val, parts = build_corpus(data, 300, 288, 12, 0, traces=["nab_ec2_cpu_24ae8d_5m"])
    names = [p.name for p in parts]
    assert names[0] == "nab_ec2_cpu_24ae8d_5m"
    assert len(names) == 1 + len(SYNTHETIC) + MIXED + MIXUPS
    assert not any(n.startswith(("nab_", "nasa_", "bitbrains_", "alibaba")) for n in names[1:])
    mixups = [p.source for p in parts if p.name.startswith("mixup_")]
    assert mixups
    assert all(re.findall(r"x (\w+)\[", m) == ["nab_ec2_cpu_24ae8d_5m"] for m in mixups)
    assert len(train[0]) == sum(
        min(p.windows, p.train_end - 288 - 12 + 1) for p in parts
    )  # every window comes from a listed part


def test_the_pretrained_model_reads_the_seasons_and_is_no_larger_than_the_default() -> None:
    from promcast.forecaster.artifact import read_artifact
    from promcast.forecaster.models import build_model
    from promcast.forecaster.pretrain import PERIODS, matched_hidden

    def size(**hp: object) -> int:
        return sum(p.numel() for p in build_model("mlp", 288, 12, **hp).parameters())

    hidden = matched_hidden(PERIODS)
    assert (
        size(norm="meanstd", periods=PERIODS, hidden=hidden)
        <= size()
        < size(norm="meanstd", periods=PERIODS, hidden=hidden + 1)
    )
    arrays, meta = read_artifact(PRETRAINED)
    assert meta["model"]["hparams"]["periods"] == list(PERIODS)
    assert meta["model"]["hparams"]["hidden"] == hidden
    assert sum(a.size for a in arrays.values()) <= size()  # what ships, counted from its weights


def test_the_pretrained_model_forecasts_its_golden_window() -> None:
    """The forecast and bands of one fixed window, as the torch runtime computed them when the weights shipped
    (tests/fixtures/make_pretrained_golden.py): the NumPy runtime serves the model itself, not naive."""
    golden = json.loads(GOLDEN.read_text())
    model = load_pretrained()
    assert model.meta["weights_sha256"] == golden["weights_sha256"], "new weights: rerun make_pretrained_golden"
    assert model.serves == "model"
    window = np.array(golden["input"])
    point, bands = model.predict_interval(window[None, :], (0.8, 0.95))
    np.testing.assert_allclose(point[0], golden["forecast"], rtol=1e-5)
    for level in (0.8, 0.95):
        np.testing.assert_allclose(bands[level][0][0], golden["intervals"][f"{level:g}"]["lower"], rtol=1e-5)
        np.testing.assert_allclose(bands[level][1][0], golden["intervals"][f"{level:g}"]["upper"], rtol=1e-5)
    # the golden forecast is no repeat of the last value: it would not tell the model from naive
    assert np.abs(np.array(golden["forecast"]) - window[-1]).max() > 5.0


def test_the_pretrained_model_beats_naive_on_a_daily_cycle_it_never_saw() -> None:
    from promcast.forecaster.synthetic import diurnal

    model = load_pretrained()
    n = model.input_length
    values = diurnal(3000, "5min", seed=1).to_numpy()
    origins = np.arange(n, len(values) - 12, 25)
    x = np.stack([values[o - n : o] for o in origins])
    y = np.stack([values[o : o + 12] for o in origins])
    model_mae = np.abs(model.predict(x) - y).mean()
    naive_mae = np.abs(x[:, -1:] - y).mean()
    assert model_mae < 0.8 * naive_mae, (model_mae, naive_mae)
