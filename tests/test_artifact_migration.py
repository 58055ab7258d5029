"""The artifact migration table: an old artifact loads and forecasts as it did, a migrated meta.json has each field
the table fills, a newer format is refused naming both versions, and a new artifact is written at format 2."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promcast.forecaster import PRETRAINED, ArtifactError, Forecaster, TrainConfig
from promcast.forecaster.artifact import FORMAT_VERSION, META_FILE, MIGRATIONS, _meta_digest, migrate
from promcast.forecaster.numpy_runtime import load_frozen
from promcast.forecaster.synthetic import diurnal

FIXTURES = Path(__file__).parent / "fixtures"
TOL = {"rtol": 1e-5, "atol": 1e-6}  # as tests/test_fixture_artifact.py: the goldens were recorded on another host


def _old_mlp() -> dict[str, Any]:
    """A format 1 meta.json of a gated mlp made before every field the table fills (the parts migrate reads)."""
    return {
        "format_version": 1,
        "model": {"name": "mlp", "hparams": {"hidden": 8, "layers": 1, "dropout": 0.1, "members": 3, "norm": "last"}},
        "window": 24,
        "horizon": 12,
        "gate": {"steps": 12, "stride": 2, "eta": 10.0, "floor": 0.001, "margin": 0.5},
    }


def _raw(path: Path) -> dict[str, Any]:
    return dict(json.loads((path / META_FILE).read_text()))


def _rewrite(path: Path, meta: dict[str, Any]) -> None:
    """Write meta.json resealed with its checksum, as a writer of that format would have."""
    meta["meta_sha256"] = _meta_digest(meta)
    (path / META_FILE).write_text(json.dumps(meta))


# ---- an old artifact loads and forecasts as recorded ---------------------------------------------------------


@pytest.mark.parametrize("name", ["gru_v1", "mlp_v1"])
def test_the_committed_fixtures_are_format_1_without_the_migrated_fields(name: str) -> None:
    meta = _raw(FIXTURES / name)
    assert meta["format_version"] == 1
    assert "serves" not in meta
    assert "input_length" not in meta
    assert "gate" not in meta


def test_the_format_1_gru_loads_through_torch_and_forecasts_as_recorded() -> None:
    expected = json.loads((FIXTURES / "gru_v1_expected.json").read_text())
    f = Forecaster.load(FIXTURES / "gru_v1")
    assert f.calibration is None  # made before the interval calibration
    np.testing.assert_allclose(f.predict_next_12(np.asarray(expected["input"])), expected["forecast"], **TOL)


@pytest.mark.parametrize("load", [Forecaster.load, load_frozen], ids=["torch", "numpy"])
def test_the_format_1_mlp_loads_and_forecasts_as_recorded(load: Any) -> None:
    expected = json.loads((FIXTURES / "mlp_v1_expected.json").read_text())
    f = load(FIXTURES / "mlp_v1")
    point, bounds = f.forecast_interval(np.asarray(expected["input"]), (0.8, 0.95))
    np.testing.assert_allclose(point, expected["forecast"], **TOL)
    np.testing.assert_allclose(bounds[0.95][0], expected["intervals"]["0.95"]["lower"], **TOL)
    np.testing.assert_allclose(bounds[0.95][1], expected["intervals"]["0.95"]["upper"], **TOL)


def test_an_artifact_without_a_format_version_loads_as_format_1(tmp_path: Path) -> None:
    expected = json.loads((FIXTURES / "mlp_v1_expected.json").read_text())
    unversioned = shutil.copytree(FIXTURES / "mlp_v1", tmp_path / "mlp")
    meta = _raw(unversioned)
    del meta["format_version"]
    _rewrite(unversioned, meta)
    f = load_frozen(unversioned)
    np.testing.assert_allclose(f.forecast(np.asarray(expected["input"])), expected["forecast"], **TOL)


def test_a_format_1_gate_without_the_median_field_forecasts_with_naive_and_the_model_only(tmp_path: Path) -> None:
    old = shutil.copytree(PRETRAINED, tmp_path / "old")
    meta = _raw(old)
    meta["format_version"] = 1
    del meta["gate"]["median"]
    _rewrite(old, meta)
    two_experts = load_frozen(PRETRAINED)
    assert two_experts.gate is not None
    two_experts.gate = dataclasses.replace(two_experts.gate, median=False)  # the gate those artifacts ran
    windows = 50 + 10 * np.random.default_rng(0).standard_normal((6, two_experts.input_length))
    expected = two_experts.predict(windows)
    assert not np.array_equal(expected, load_frozen(PRETRAINED).predict(windows))  # the median matters here
    np.testing.assert_array_equal(load_frozen(old).predict(windows), expected)


# ---- the table's values ----------------------------------------------------------------------------------------


def test_the_table_has_one_row_per_field_that_artifacts_gained() -> None:
    rows = {(row.version, row.field) for row in MIGRATIONS}
    assert rows == {
        (1, "intervals"),
        (1, "gate"),
        (2, "gate.median"),
        (1, "input_length"),
        (1, "serves"),
        (1, "model.hparams.periods"),
    }


def test_no_row_is_newer_than_the_format() -> None:
    assert max(row.version for row in MIGRATIONS) <= FORMAT_VERSION


def test_a_migrated_meta_is_at_format_2() -> None:
    assert migrate(_old_mlp())["format_version"] == 2


def test_a_migrated_meta_has_no_intervals() -> None:
    assert migrate(_old_mlp())["intervals"] is None


def test_a_migrated_gate_has_no_median_expert() -> None:
    assert migrate(_old_mlp())["gate"]["median"] is False


def test_a_migrated_input_length_is_the_window_and_the_gates_recent_past() -> None:
    assert migrate(_old_mlp())["input_length"] == 24 + 1 + 11 * 2


def test_a_migrated_meta_serves_the_model() -> None:
    assert migrate(_old_mlp())["serves"] == "model"


def test_a_migrated_mlp_has_no_periods() -> None:
    assert migrate(_old_mlp())["model"]["hparams"]["periods"] == []


def test_a_meta_without_a_gate_migrates_to_none_and_its_window() -> None:
    ungated = {k: v for k, v in _old_mlp().items() if k != "gate"}
    migrated = migrate(ungated)
    assert migrated["gate"] is None
    assert migrated["input_length"] == 24


def test_only_the_mlp_gains_periods() -> None:
    gru = {**_old_mlp(), "model": {"name": "gru", "hparams": {"hidden": 4}}}
    assert "periods" not in migrate(gru)["model"]["hparams"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("serves", "naive"), ("input_length", 99), ("intervals", {"probs": []})],
)
def test_a_field_present_is_kept_as_written(field: str, value: Any) -> None:
    assert migrate({**_old_mlp(), field: value})[field] == value


def test_a_gate_with_the_median_field_keeps_it() -> None:
    meta = _old_mlp()
    meta["gate"]["median"] = True
    assert migrate(meta)["gate"]["median"] is True


def test_migrate_leaves_its_argument_as_it_was() -> None:
    meta = _old_mlp()
    migrate(meta)
    assert meta == _old_mlp()


# ---- versions -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gated mlp saved by this promcast, so that every field the table fills has its parent."""
    series = diurnal(600, "5min", seed=12)
    tiny = TrainConfig(epochs=1, max_batches=2, progress=False)
    f = Forecaster("mlp", window=24, training=tiny, hidden=4, members=1, verdict=False).fit(series)
    return f.save(tmp_path_factory.mktemp("saved") / "mlp")


def test_the_format_is_2() -> None:
    assert FORMAT_VERSION == 2


def test_a_new_artifact_is_written_at_format_2(saved: Path) -> None:
    assert _raw(saved)["format_version"] == 2


@pytest.mark.parametrize("field", [row.field for row in MIGRATIONS])
def test_a_new_artifact_carries_every_field_the_table_fills(saved: Path, field: str) -> None:
    *parents, leaf = field.split(".")
    node = _raw(saved)
    for key in parents:
        node = node[key]
    assert leaf in node


@pytest.mark.parametrize("load", [Forecaster.load, load_frozen], ids=["torch", "numpy"])
def test_a_newer_format_is_refused_naming_both_versions(saved: Path, tmp_path: Path, load: Any) -> None:
    newer = shutil.copytree(saved, tmp_path / "newer")
    _rewrite(newer, {**_raw(newer), "format_version": 3})
    with pytest.raises(ArtifactError, match=r"format_version 3, this promcast reads formats 1 to 2"):
        load(newer)


@pytest.mark.parametrize("version", ["1", 1.0, True, 0, None])
def test_a_format_version_that_is_no_known_version_is_refused(saved: Path, tmp_path: Path, version: Any) -> None:
    bad = shutil.copytree(saved, tmp_path / "bad")
    _rewrite(bad, {**_raw(bad), "format_version": version})
    with pytest.raises(ArtifactError, match="format_version"):
        load_frozen(bad)


def test_a_format_2_artifact_without_its_meta_checksum_is_refused(saved: Path, tmp_path: Path) -> None:
    bare = shutil.copytree(saved, tmp_path / "bare")
    meta = _raw(bare)
    del meta["meta_sha256"]
    (bare / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="meta_sha256"):
        load_frozen(bare)
