"""`promcast predict` prints the next 12 forecasts with their future timestamps."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from promcast.daemon.cli import main
from promcast.forecaster import Forecaster


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


def test_predict_prints_the_intervals_beside_the_point_forecast(seasonal: pd.Series, tmp_path, capsys) -> None:
    f = Forecaster("ar", window=24).fit(seasonal)
    assert f.calibration is not None
    csv = tmp_path / "in.csv"
    seasonal.rename("value").rename_axis("timestamp").to_csv(csv)
    args = ["predict", "--model", str(f.save(tmp_path / "m")), "--input", str(csv)]
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["forecast"]
    point, bounds = f.forecast_interval(seasonal, (0.8, 0.95))
    np.testing.assert_allclose([r["value"] for r in rows], point)
    for i, row in enumerate(rows):
        assert set(row["intervals"]) == {"0.8", "0.95"}
        np.testing.assert_allclose(row["intervals"]["0.95"]["lower"], bounds[0.95][0][i])
        np.testing.assert_allclose(row["intervals"]["0.8"]["upper"], bounds[0.8][1][i])
        assert row["intervals"]["0.95"]["lower"] <= row["intervals"]["0.8"]["lower"] < row["value"]
    assert main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "h",
        "timestamp",
        "value",
        "lower",
        "0.8",
        "upper",
        "0.8",
        "lower",
        "0.95",
        "upper",
        "0.95",
    ]
    assert len(table) == 13
    assert len(table[1].split()) == 7


def test_predict_refuses_a_csv_at_another_step(seasonal: pd.Series, tmp_path, capsys) -> None:
    model = Forecaster("ar", window=24).fit(seasonal).save(tmp_path / "m")  # a 10-minute model
    csv = tmp_path / "hourly.csv"
    seasonal.resample("1h").mean().rename("value").rename_axis("timestamp").to_csv(csv)
    assert main(["predict", "--model", str(model), "--input", str(csv)]) == 1
    err = capsys.readouterr().err
    assert "its step is 3600s but the model's is 600s" in err
