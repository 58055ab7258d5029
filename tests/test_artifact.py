"""The artifact is a folder of plain files, written atomically; load refuses anything corrupt or inconsistent."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.forecaster import ArtifactError, Forecaster, TrainConfig
from promcast.forecaster.artifact import META_FILE, WEIGHTS_FILE


@pytest.fixture
def saved(seasonal: pd.Series, fast: TrainConfig, tmp_path: Path) -> Path:
    return Forecaster("gru", window=24, training=fast, hidden=8, verdict=False).fit(seasonal).save(tmp_path / "model")


def test_artifact_is_plain_files(saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [META_FILE, WEIGHTS_FILE]
    meta = json.loads((saved / META_FILE).read_text())
    for key in ("model", "scaler", "window", "horizon", "step_seconds", "training", "validation", "versions"):
        assert key in meta
    assert meta["format_version"] == 2
    assert len(meta["weights_sha256"]) == 64
    assert meta["training"]["points"] == 720
    assert meta["step_seconds"] == 600.0
    assert not list(saved.parent.glob(".*tmp*")), "no temporary folder is left behind"


def test_the_same_model_saved_twice_is_the_same_bytes(saved: Path, tmp_path: Path) -> None:
    """A checksum names the weights (the pretrained model's card), so saving them again writes the same file."""
    model = Forecaster.load(saved)
    files = [(model.save(tmp_path / f"again{i}") / WEIGHTS_FILE).read_bytes() for i in range(8)]
    assert all(f == (saved / WEIGHTS_FILE).read_bytes() for f in files)
    assert model.predict(np.ones((1, model.input_length))).shape == (1, 12)  # and it still loads and predicts


def test_save_replaces_an_existing_artifact(saved: Path, seasonal: pd.Series) -> None:
    other = Forecaster("naive", window=24).fit(seasonal)
    other.save(saved)
    assert Forecaster.load(saved).model_name == "naive"
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model"]


def test_truncated_weights_are_refused(saved: Path) -> None:
    w = saved / WEIGHTS_FILE
    w.write_bytes(w.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="checksum"):
        Forecaster.load(saved)


def test_a_flipped_byte_is_refused(saved: Path) -> None:
    w = saved / WEIGHTS_FILE
    blob = bytearray(w.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    w.write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="checksum"):
        Forecaster.load(saved)


def test_meta_whose_window_disagrees_with_the_weights_is_refused(saved: Path) -> None:
    meta = json.loads((saved / META_FILE).read_text())
    meta["window"] = 48
    meta["format_version"] = 1  # as in a format 1 artifact written before meta.json carried its own checksum
    del meta["meta_sha256"]
    (saved / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="window=48 but the weights were saved with 24"):
        Forecaster.load(saved)


def test_meta_with_wrong_hparams_is_refused(saved: Path) -> None:
    meta = json.loads((saved / META_FILE).read_text())
    meta["model"]["hparams"]["hidden"] = 16
    meta["format_version"] = 1  # without its checksum, as above
    del meta["meta_sha256"]
    (saved / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="does not describe these weights"):
        Forecaster.load(saved)


@pytest.mark.parametrize("missing", [META_FILE, WEIGHTS_FILE])
def test_missing_files_are_refused(saved: Path, missing: str) -> None:
    (saved / missing).unlink()
    with pytest.raises(ArtifactError):
        Forecaster.load(saved)


def test_garbage_meta_is_refused(saved: Path) -> None:
    (saved / META_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        Forecaster.load(saved)


def test_a_pickle_in_place_of_the_weights_is_refused(saved: Path) -> None:
    (saved / WEIGHTS_FILE).write_bytes(pickle.dumps({"weights": np.ones(3)}))
    with pytest.raises(ArtifactError):
        Forecaster.load(saved)
