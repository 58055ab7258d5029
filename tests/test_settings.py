"""Settings that reach what they configure, and bad values named at start-up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.models.training import fit_target
from promcast.daemon.settings import ConfigError, TargetSettings, load_settings


def test_a_target_scaler_reaches_the_fitted_model_and_a_bad_one_is_named(tmp_path) -> None:
    target = TargetSettings(name="t", query="q", window=24, model="ar", scaler="minmax")
    series = pd.Series(np.sin(np.arange(400) / 7.0) + 5.0, index=pd.date_range("2024", periods=400, freq="1min"))
    assert fit_target(target, {(): series}).meta["scaler"]["kind"] == "minmax"
    cfg = tmp_path / "p.yaml"
    cfg.write_text("targets:\n  - name: t\n    query: q\n    scaler: robust\n")
    with pytest.raises(ConfigError, match=r"targets\.0\.scaler"):
        load_settings(cfg)
