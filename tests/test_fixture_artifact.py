"""Tiny artifacts checked into tests/fixtures guard the on-disk format: a change to it is never silent.

They are format 1 artifacts and stay so: they prove that an old artifact still loads (through
``forecaster.artifact.migrate``). If this fails after an intended format change, bump FORMAT_VERSION and add the
change's row to ``forecaster.artifact.MIGRATIONS`` rather than regenerate them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from promcast.forecaster import DEFAULT_MODEL, ArtifactError, Forecaster
from promcast.forecaster.numpy_runtime import load_frozen

FIXTURES = Path(__file__).parent / "fixtures"


def test_checked_in_artifact_loads_and_predicts_as_recorded() -> None:
    expected = json.loads((FIXTURES / "gru_v1_expected.json").read_text())
    f = Forecaster.load(FIXTURES / "gru_v1")
    assert f.model_name == "gru"
    assert f.window == 24
    assert f.horizon == 12
    out = f.predict_next_12(np.asarray(expected["input"]))
    np.testing.assert_allclose(out, expected["forecast"], rtol=1e-5, atol=1e-6)


def _default_expected() -> dict:
    return dict(json.loads((FIXTURES / "mlp_v1_expected.json").read_text()))


@pytest.mark.parametrize(("runtime", "load"), [("torch", Forecaster.load), ("numpy", load_frozen)])
def test_the_default_models_format_1_artifact_loads_through_both_runtimes(runtime: str, load) -> None:
    expected = _default_expected()
    f = load(FIXTURES / "mlp_v1")
    assert f.model_name == DEFAULT_MODEL
    assert f.window == 24
    assert f.horizon == 12
    assert f.runtime == runtime
    recent = np.asarray(expected["input"])
    point, bounds = f.forecast_interval(recent, (0.8, 0.95))
    np.testing.assert_allclose(point, expected["forecast"], rtol=1e-5, atol=1e-6)
    for level, (lo, hi) in bounds.items():
        np.testing.assert_allclose(lo, expected["intervals"][f"{level:g}"]["lower"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(hi, expected["intervals"][f"{level:g}"]["upper"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("load", [Forecaster.load, load_frozen], ids=["torch", "numpy"])
def test_a_hand_edited_meta_with_its_own_checksum_is_refused(load, tmp_path: Path) -> None:
    copy = tmp_path / "mlp"
    shutil.copytree(FIXTURES / "mlp_v1", copy)
    meta = json.loads((copy / "meta.json").read_text())
    assert "meta_sha256" in meta
    meta["max_gap"] = 50  # a plausible edit that the weights' own header cannot catch
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="meta"):
        load(copy)
