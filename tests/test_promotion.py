"""The promotion scores the champion on data it never trained on, says what each candidate was scored on, and
never promotes over a champion it could not read (real artifacts in a temporary store)."""

from __future__ import annotations

import errno
import pathlib
from pathlib import Path

import numpy as np
import pytest

from promcast.daemon.clock import align
from promcast.daemon.models.retrain import ChampionUnreadable, retrain, split_holdout
from promcast.daemon.models.store import ModelStore, StoreError
from promcast.daemon.models.training import fit_target, training_series
from promcast.daemon.settings import RetrainSettings
from promcast.forecaster import Forecaster
from promcast.forecaster.artifact import WEIGHTS_FILE

from .test_retrain import TARGET, WINDOW, FakeSource

RS = RetrainSettings()


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models", "cpu", keep=3)


END = align(FakeSource().now(), TARGET.step)  # the end of the history a retrain run reads


def whole_history() -> dict:
    return FakeSource().fetch(TARGET, END - TARGET.history, END)


def training_part() -> dict:
    return split_holdout(whole_history(), TARGET, END, RS)[0]


def holdout_mae(f: Forecaster) -> float:
    """``f``'s MAE on the gate's holdout windows."""
    _, h = split_holdout(whole_history(), TARGET, END, RS)
    return float(np.mean(np.abs(f.predict(h.inputs) - h.targets)))


def test_a_first_start_champion_is_not_scored_on_its_own_training_data(store: ModelStore) -> None:
    # What first start does: the target's recipe fitted on the whole history, the retrain's holdout included.
    first = fit_target(TARGET, whole_history())
    champion = store.publish(first)
    in_sample = holdout_mae(first)
    result = retrain(TARGET, FakeSource(), store, RS)
    report = result.report
    scores, on = report["scores"], report["scored_on"]
    assert scores["champion"]["mae"] != pytest.approx(in_sample)  # never the score on what it trained on
    # Its recipe is the challenger's: fitted on the same training part, that recipe scores the challenger's score.
    assert scores["champion"] == scores["challenger"]
    assert on["champion"]["fit"] == "its recipe on the training part (the challenger)"
    assert "reaches into the holdout" in on["champion"]["why"]
    assert on["champion"]["artifact_training"]["end"] >= report["holdout"]["start"]
    for name in ("challenger", "naive", "ar"):
        assert on[name]["training"]["end"] < report["holdout"]["start"], name
    assert result.decision == "keep"
    assert "gain 0.00%" in result.reason
    assert store.current_version() == champion
    assert "champion scored its recipe on the training part" in result.reason


def test_a_champion_of_another_recipe_trained_into_the_holdout_is_refit_on_the_training_part(
    store: ModelStore,
) -> None:
    recipe = {"window": WINDOW, "horizon": 12, "step": "60s", "order": 8}
    store.publish(Forecaster("ar", **recipe).fit(training_series(whole_history())))
    report = retrain(TARGET, FakeSource(), store, RS).report
    refit = Forecaster("ar", **recipe).fit(training_series(training_part()))
    assert report["scored_on"]["champion"]["fit"] == "its recipe refit on the training part"
    assert report["scores"]["champion"]["mae"] == pytest.approx(holdout_mae(refit), rel=1e-9)


def test_a_champion_trained_before_the_holdout_is_scored_as_trained(store: ModelStore) -> None:
    before = Forecaster("ar", window=WINDOW, horizon=12, step="60s", order=16).fit(training_series(training_part()))
    store.publish(before)
    report = retrain(TARGET, FakeSource(), store, RS).report
    assert report["scored_on"]["champion"]["fit"] == "as trained"
    assert report["scores"]["champion"]["mae"] == pytest.approx(holdout_mae(before), rel=1e-9)


def test_a_champion_that_cannot_be_read_now_stops_the_run_and_stays(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    naive = Forecaster("naive", window=WINDOW, horizon=12, step="60s").fit(training_series(whole_history()))
    champion = store.publish(naive)
    weights = store.versions_dir / champion / WEIGHTS_FILE
    real = pathlib.Path.read_bytes

    def flaky(self: pathlib.Path) -> bytes:  # the disk answers EIO for the champion's weights, for now
        if self == weights:
            raise OSError(errno.EIO, "Input/output error", str(self))
        return real(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", flaky)
    with pytest.raises(ChampionUnreadable, match=r"cannot be read now.*Input/output error"):
        retrain(TARGET, FakeSource(), store, RS)
    assert store.current_version() == champion
    assert store.versions() == [champion]
    assert store.decisions() == []
    monkeypatch.undo()
    weights.write_bytes(weights.read_bytes()[:50])  # corrupt, not unreadable: it may be replaced
    result = retrain(TARGET, FakeSource(), store, RS)
    assert result.decision == "promote"
    assert "unusable" in result.report["champion_error"]


def test_a_current_that_is_no_link_stops_the_run(store: ModelStore) -> None:
    store.current_link.mkdir(parents=True)
    with pytest.raises(StoreError, match="not a readable symlink"):
        retrain(TARGET, FakeSource(), store, RS)
    assert store.versions() == []
    assert store.current_link.is_dir()
