"""`promcast predict` prints the next 12 forecasts with their future timestamps."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from daemon.cli import main
from forecaster import Forecaster


def test_predict_json(seasonal: pd.Series, tmp_path, capsys) -> None:
    f = Forecaster("ar", window=24).fit(seasonal)
    model = f.save(tmp_path / "m")
    csv = tmp_path / "in.csv"
    seasonal.rename("value").rename_axis("timestamp").to_csv(csv)
    assert main(["predict", "--model", str(model), "--input", str(csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["h"] for r in out["forecast"]] == list(range(1, 13))
    last = seasonal.index[-1]
    assert pd.Timestamp(out["forecast"][0]["timestamp"]) == last + pd.Timedelta("10min")
    assert pd.Timestamp(out["forecast"][-1]["timestamp"]) == last + 12 * pd.Timedelta("10min")
    np.testing.assert_allclose([r["value"] for r in out["forecast"]], f.predict_next_12(seasonal))


def test_predict_reports_a_bad_artifact(tmp_path, capsys) -> None:
    (tmp_path / "m").mkdir()
    csv = tmp_path / "in.csv"
    csv.write_text("timestamp,value\n2024-01-01,1\n")
    assert main(["predict", "--model", str(tmp_path / "m"), "--input", str(csv)]) == 1
    assert "bad model artifact" in capsys.readouterr().err
