"""Serving through NumPy (forecaster.numpy_runtime) gives the torch model's forecasts and refuses what torch does."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from promcast.forecaster import MODEL_NAMES, MODELS, ArtifactError, Forecaster, TrainConfig
from promcast.forecaster.artifact import read_artifact, write_artifact
from promcast.forecaster.catalog import CATALOG
from promcast.forecaster.forwards import _CHUNK, seasonal_features
from promcast.forecaster.models import BASELINES
from promcast.forecaster.names import BASELINES as NAMED_BASELINES
from promcast.forecaster.numpy_runtime import ArrayForecaster, gelu, load_frozen

WINDOW = 24
CASES = {
    "naive": {},
    "seasonal_naive": {"period": 12},
    "ar": {"order": 8},
    "nlinear": {},
    "mlp": {"hidden": 16, "members": 3},
    "mlp-meanstd-2-layers": {"hidden": 16, "members": 2, "layers": 2, "norm": "meanstd"},
    "mlp-no-norm": {"hidden": 16, "members": 1, "norm": "none"},
    "mlp-meanstd-periods": {"hidden": 16, "members": 2, "norm": "meanstd", "periods": (4, 12)},
}


def _fit(case: str, series: pd.Series, fast: TrainConfig, path: Path) -> Path:
    model = case.split("-")[0]
    Forecaster(model, window=WINDOW, training=fast, verdict=False, **CASES[case]).fit(series).save(path)
    return path


def _windows(series: pd.Series, length: int) -> np.ndarray:
    """Inputs of ``length`` points (a model's input_length: its window, and the gate's recent past): more rows than
    one of the NumPy runtime's blocks, the last block a partial one."""
    values = series.to_numpy()
    rng = np.random.default_rng(0)
    block = ArrayForecaster.block
    starts = rng.integers(0, len(values) - length, size=block + block // 4)
    inside = np.stack([values[s : s + length] for s in starts])
    outside = inside * 3.0 + 50.0  # a level and spread the model never saw
    return np.concatenate([inside, outside])


def test_the_name_lists_match_the_registry() -> None:
    assert tuple(MODELS) == MODEL_NAMES
    assert BASELINES == NAMED_BASELINES
    assert all(MODELS[name].name == name and MODELS[name].__name__.endswith("Net") for name in MODEL_NAMES)
    served = {name for name, spec in CATALOG.items() if spec.numpy is not None}
    assert served == {"naive", "seasonal_naive", "ar", "nlinear", "mlp"}  # the default among them


@pytest.mark.parametrize("case", sorted(CASES))
def test_numpy_forward_matches_torch(case: str, seasonal: pd.Series, fast: TrainConfig, tmp_path: Path) -> None:
    path = _fit(case, seasonal, fast, tmp_path / case)
    torch_model, array_model = Forecaster.load(path), ArrayForecaster.load(path)
    torch_model.block = 100  # passes of 100 rows against the NumPy runtime's 128: two block boundaries, one answer
    assert array_model.input_length == torch_model.input_length
    windows = _windows(seasonal, torch_model.input_length)
    want, got = torch_model.predict(windows), array_model.predict(windows)
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)
    point, bounds = array_model.predict_interval(windows, (0.8, 0.95))
    want_point, want_bounds = torch_model.predict_interval(windows, (0.8, 0.95))
    np.testing.assert_allclose(point, want_point, rtol=1e-5, atol=1e-5 * scale)
    for level in (0.8, 0.95):
        np.testing.assert_allclose(bounds[level], want_bounds[level], rtol=1e-5, atol=1e-5 * scale)
    recent = seasonal.iloc[-100:]
    np.testing.assert_allclose(
        array_model.predict_next_12(recent), torch_model.predict_next_12(recent), rtol=1e-5, atol=1e-5 * scale
    )
    assert (array_model.window, array_model.step, array_model.meta) == (WINDOW, torch_model.step, torch_model.meta)


def test_gelu_matches_torch_in_float32_and_the_exact_value_in_both_tails() -> None:
    x = np.linspace(-12.0, 12.0, 150_001, dtype=np.float32)  # more than two of gelu's chunks: the last partial
    assert 2 * _CHUNK < x.size < 3 * _CHUNK
    got = gelu(x)
    assert got.dtype == np.float32
    # torch's float32 gelu: within a few float32 roundings of x (torch's own cancellation near x = -4 is the most)
    want = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    np.testing.assert_array_less(np.abs(got - want), 5e-7 * np.maximum(1.0, np.abs(x)))
    # the exact value (float64): a relative error of float32 size even deep in the negative tail, where
    # torch's 1 + erf form cancels to zero
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2.0)) for v in x.astype(np.float64)])
    np.testing.assert_allclose(got, exact, rtol=2e-5, atol=0)
    # in place (as the mlp's forward runs it on its activations): the same values, written into the input
    inplace = x.copy()
    assert np.shares_memory(gelu(inplace, out=inplace), inplace)
    assert np.array_equal(inplace, got)
    for bad in (np.empty(x.shape, dtype=np.float64), np.empty(2 * len(x), dtype=np.float32)[::2], x[:-1].copy()):
        with pytest.raises(ValueError, match="C-contiguous float32"):
            gelu(x, out=bad)


def test_load_frozen_picks_numpy_where_it_can_and_torch_otherwise(
    seasonal: pd.Series, fast: TrainConfig, tmp_path: Path
) -> None:
    mlp = _fit("mlp", seasonal, fast, tmp_path / "mlp")
    gru = tmp_path / "gru"
    Forecaster("gru", window=WINDOW, training=fast, hidden=8, verdict=False).fit(seasonal).save(gru)
    assert isinstance(load_frozen(mlp), ArrayForecaster)
    assert isinstance(load_frozen(gru), Forecaster)
    with pytest.raises(ArtifactError, match="no NumPy forward"):
        ArrayForecaster.load(gru)


def test_an_artifact_the_numpy_runtime_refuses_goes_to_torch_only_when_asked_and_never_silently(
    seasonal: pd.Series, fast: TrainConfig, tmp_path: Path
) -> None:
    arrays, meta = read_artifact(_fit("mlp", seasonal, fast, tmp_path / "ok"))
    del meta["model"]["hparams"]["norm"]  # as if written before the field existed: torch fills the default
    old = write_artifact(tmp_path / "old", arrays, meta)
    with pytest.raises(ArtifactError, match="hyperparameters"):
        ArrayForecaster.load(old)
    with pytest.raises(ArtifactError, match=r"hyperparameters .*torch_fallback is off"):
        load_frozen(old)  # the default: refused, with the NumPy runtime's reason
    reasons: list[str] = []
    served = load_frozen(old, torch_fallback=True, on_fallback=reasons.append)
    assert isinstance(served, Forecaster)
    assert len(reasons) == 1
    assert "the NumPy mlp reads" in reasons[0]
    assert "through torch" in reasons[0]
    with pytest.warns(RuntimeWarning, match="the NumPy mlp reads"):  # no callback: a warning, still not silent
        load_frozen(old, torch_fallback=True)
    windows = _windows(seasonal, served.input_length)
    np.testing.assert_allclose(served.predict(windows), Forecaster.load(tmp_path / "ok").predict(windows))


def test_an_artifact_made_before_a_later_hyperparameter_is_served_by_numpy_with_its_default(
    seasonal: pd.Series, fast: TrainConfig, tmp_path: Path
) -> None:
    arrays, meta = read_artifact(_fit("mlp", seasonal, fast, tmp_path / "ok"))
    assert meta["model"]["hparams"]["periods"] == []
    del meta["model"]["hparams"]["periods"]  # as every mlp artifact before the seasonal feature
    old = ArrayForecaster.load(write_artifact(tmp_path / "old", arrays, meta))
    windows = _windows(seasonal, old.input_length)
    np.testing.assert_allclose(old.predict(windows), Forecaster.load(tmp_path / "ok").predict(windows), rtol=1e-5)


def test_the_seasonal_feature_reads_the_season_of_the_best_correlated_period() -> None:
    t = np.arange(48, dtype=np.float32)
    z = np.sin(2 * np.pi * t / 12).astype(np.float32)[None, :]  # a period of 12 steps, not of 5
    z = (z - z.mean()) / z.std()
    features = seasonal_features(z, (5, 12), 6)
    np.testing.assert_allclose(features[0, :6], z[0, -12:-6], atol=1e-3)  # the season 12 steps back
    assert features[0, 7] > 0.6 > features[0, 6]  # its autocorrelation, then 5's


def test_periods_need_the_window_normalised_and_to_fit_in_it() -> None:
    with pytest.raises(ValueError, match="periods need norm='meanstd'"):
        Forecaster("mlp", window=WINDOW, periods=(4,))  # norm "last"
    with pytest.raises(ValueError, match="periods need norm='meanstd'"):
        Forecaster("mlp", window=WINDOW, norm="meanstd", periods=(20,))  # more than 2/3 of the window


def test_weights_the_forward_does_not_use_are_refused_as_torch_refuses_them(
    seasonal: pd.Series, fast: TrainConfig, tmp_path: Path
) -> None:
    arrays, meta = read_artifact(_fit("nlinear", seasonal, fast, tmp_path / "ok"))
    bad = write_artifact(tmp_path / "bad", {**arrays, "extra": np.zeros(3, dtype=np.float32)}, meta)
    with pytest.raises(ArtifactError, match="extra"):
        ArrayForecaster.load(bad)
    with pytest.raises(ArtifactError, match="extra"):
        load_frozen(bad)
    with pytest.raises(ArtifactError, match="extra"), pytest.warns(RuntimeWarning, match="through torch"):
        load_frozen(bad, torch_fallback=True)  # torch, when asked next, refuses it too


def test_weights_of_the_wrong_shape_are_refused(seasonal: pd.Series, fast: TrainConfig, tmp_path: Path) -> None:
    arrays, meta = read_artifact(_fit("mlp", seasonal, fast, tmp_path / "ok"))
    arrays["weights.1"] = arrays["weights.1"][:, :, :6]  # 6 outputs where meta.json says horizon 12
    arrays["biases.1"] = arrays["biases.1"][:, :, :6]
    bad = write_artifact(tmp_path / "bad", arrays, meta)
    with pytest.raises(ArtifactError, match=r"weights.1 has shape \[3, 16, 6\], the hyperparameters give \[3, 16, 12"):
        ArrayForecaster.load(bad)
    with pytest.raises(ArtifactError):
        Forecaster.load(bad)


def test_serving_the_default_model_never_imports_torch(seasonal: pd.Series, fast: TrainConfig, tmp_path: Path) -> None:
    path = _fit("mlp", seasonal, fast, tmp_path / "mlp")
    recent = seasonal.to_numpy()[-Forecaster.load(path).input_length :].tolist()
    script = textwrap.dedent(
        f"""
        import json, sys
        from promcast.forecaster.numpy_runtime import load_frozen
        model = load_frozen({str(path)!r})
        out = model.predict_next_12({recent!r})
        print(json.dumps({{"forecast": out.tolist(), "torch": "torch" in sys.modules}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    answer = json.loads(proc.stdout)
    assert answer["torch"] is False
    want = Forecaster.load(path).predict_next_12(np.asarray(recent))
    np.testing.assert_allclose(answer["forecast"], want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
