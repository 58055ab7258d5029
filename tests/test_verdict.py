"""The gate's verdict after fitting (``forecaster.verdict.judge``): a gated model that loses to naive on its own
validation windows serves naive, with naive's own intervals, through both runtimes and the daemon, and says so
(``meta.json``'s ``serves``, ``promcast_model_info{serves="naive"}``)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np

from promcast.daemon.app import Daemon
from promcast.daemon.cli import main
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.forecaster import Forecaster
from promcast.forecaster.gate import DEFAULT_GATE
from promcast.forecaster.numpy_runtime import load_frozen
from promcast.forecaster.protocol import inputs_at, targets_at
from promcast.forecaster.synthetic import make_workload
from promcast.forecaster.train import TrainConfig
from promcast.forecaster.verdict import judge

from .support.http import samples

FEW = TrainConfig(epochs=3, max_batches=8, progress=False)
FLOOR = DEFAULT_GATE.floor  # the verdict's: naive's MAE must be above it in every quarter


def _random_walk(n: int = 3000) -> np.ndarray:
    """Naive is the best forecast of a random walk there is: a fitted network can only lose to it."""
    return 100.0 + np.cumsum(np.random.default_rng(7).normal(0.0, 1.0, n))


def test_a_model_that_loses_to_naive_on_its_validation_windows_serves_naive(tmp_path) -> None:
    values = _random_walk()
    f = Forecaster("mlp", window=48, training=FEW, hidden=8).fit(values, "5min")
    val = f.meta["validation"]
    assert val["mae"] > val["naive_mae"], "the network was expected to lose to naive on a random walk"
    assert f.meta["serves"] == "naive"
    start = int(len(values) * (1 - f.meta["training"]["val_ratio"]))
    origins = np.arange(start + f.input_length, len(values) - 12 + 1)
    batch, truth = inputs_at(values, origins, f.input_length), targets_at(values, origins, 12)
    naive = np.repeat(batch[:, -1:], 12, axis=1)
    path = f.save(tmp_path / "m")
    for runtime in (f, Forecaster.load(path), load_frozen(path)):  # torch, torch from the artifact, NumPy
        assert runtime.serves == "naive"
        points, bands = runtime.predict_interval(batch, (0.8,))
        np.testing.assert_allclose(points, naive)  # the last value repeated, not the network
        lower, upper = bands[0.8]
        covered = float(((truth >= lower) & (truth <= upper)).mean())
        # The band is naive's own, calibrated on these very windows: near the level (a band calibrated on the
        # network's larger errors covers naive's forecasts more often than asked).
        assert 0.75 <= covered <= 0.86, f"{runtime.runtime}: the 0.8 band covers {covered:.3f} of naive's forecasts"


def test_a_model_that_beats_naive_serves_itself_and_an_ungated_one_is_never_judged() -> None:
    series = make_workload("diurnal", 3000, "5min", seed=1)
    f = Forecaster("mlp", window=48, training=TrainConfig(epochs=20, max_batches=16), hidden=16).fit(series)
    assert f.meta["validation"]["mae"] < f.meta["validation"]["naive_mae"]
    assert f.meta["serves"] == "model"
    batch = inputs_at(series.to_numpy(), np.array([2000, 2500]), f.input_length)
    assert not np.allclose(f.predict(batch), np.repeat(batch[:, -1:], 12, axis=1))
    for unjudged in ({"gate": None}, {"verdict": False}):  # no gate; a gate, told to serve the network anyway
        plain = Forecaster("mlp", window=48, training=FEW, hidden=8, **unjudged)
        plain.fit(_random_walk(), "5min")
        assert plain.meta["validation"]["mae"] > plain.meta["validation"]["naive_mae"], unjudged
        assert plain.serves == "model", unjudged


def test_the_daemon_publishes_naive_for_a_model_that_serves_naive_and_labels_it(tmp_path: Path, capsys) -> None:
    step = timedelta(minutes=1)
    f = Forecaster("mlp", window=8, step=step, training=FEW, hidden=4, members=1).fit(_random_walk(), step)
    assert f.serves == "naive", f.meta["validation"]
    target = TargetSettings(
        name="demo", query=DEMO_QUERY, step_seconds=60, window=8, history=timedelta(hours=2), model="mlp"
    )
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models")
    source = DemoSource(DemoSettings(speed=60.0, series=3), step)
    version = ModelStore(settings.model_dir, "demo").publish(f)
    daemon = Daemon(settings, source, [target], model_poll_seconds=3600)
    (result,) = daemon.run_once()
    assert result.ok, result.error
    assert result.version == version, result.error
    assert result.end is not None, result.error
    text = daemon.metrics.exposition().decode()
    ((info, _),) = samples(text, "promcast_model_info")
    assert (info["model"], info["serves"]) == ("mlp", "naive")
    data = source.fetch(target, result.end - 4 * step, result.end)
    for key, series in data.items():
        got = [v for s, v in samples(text, "promcast_forecast") if s["series"] == dict(key)["series"]]
        assert len(got) == 12, (key, got, series.iloc[-1])
        assert np.allclose(got, series.iloc[-1]), (key, got, series.iloc[-1])
    config = tmp_path / "promcast.yaml"
    config.write_text(json.dumps({"targets": [target.model_dump(mode="json")], "model_dir": str(settings.model_dir)}))
    capsys.readouterr()
    assert main(["models", "list", "--target", "demo", "--config", str(config), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["version"], row["serves"]) == (version, "naive")


def test_the_verdict_needs_a_loss_overall_and_in_most_quarters_of_the_validation_and_something_to_lose_on() -> None:
    rng = np.random.default_rng(0)
    naive = rng.uniform(0.5, 1.5, 400)
    assert judge(naive * 1.05, naive, FLOOR) == "naive"  # worse by 5 % throughout
    three = naive * 1.05
    three[:100] = naive[:100] * 0.97  # worse overall, and in three quarters of four
    assert judge(three, naive, FLOOR) == "naive"
    burst = naive * 0.95
    burst[300:] = naive[300:] * 1.5  # worse overall (1.09 x), from one stretch: better in three quarters
    assert burst.mean() > naive.mean()
    assert judge(burst, naive, FLOOR) == "model"
    half = naive * 1.05
    half[:200] = naive[:200] * 0.99  # worse overall, in two quarters of four only
    assert half.mean() > naive.mean()
    assert judge(half, naive, FLOOR) == "model"
    mostly = naive * 1.02
    mostly[:100] = naive[:100] * 0.5  # worse in three quarters, better overall
    assert mostly.mean() < naive.mean()
    assert judge(mostly, naive, FLOOR) == "model"
    assert judge(naive, naive, FLOOR) == "model"  # a tie keeps the model
    assert judge(naive[:19] * 2, naive[:19], FLOOR) == "model"  # too few windows to judge
    flat = np.zeros(400)  # naive is perfect on a flat stretch: no evidence against any model
    assert judge(np.full(400, 0.01), flat, FLOOR) == "model"
    part = naive.copy()
    part[:100] = 0.0  # one flat quarter: the three others cannot make the verdict alone
    assert judge(part + 0.01, part, FLOOR) == "model"
