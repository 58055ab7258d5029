"""The horizon is one setting: `promcast demo --horizon 24` publishes h = 1..24, scored and checked end to end."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import numpy as np
import pytest

from promcast.daemon.cli import main
from promcast.daemon.http.dashboard import TEMPLATE, h_variable, render
from promcast.daemon.models.serving import validate_for_target
from promcast.daemon.settings import ConfigError, TargetSettings, load_settings
from promcast.forecaster import ArtifactError, Forecaster
from promcast.forecaster.synthetic import make_workload

from .support.deploy import require_tool
from .support.http import fetch, samples, wait_until
from .test_cli_daemon import _start


def test_demo_with_24_steps_publishes_every_step_and_passes_promtool(tmp_path) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus (scripts/test does)")
    proc, url = _start(["demo", "--speed", "600", "--horizon", "24"], tmp_path)
    try:
        wait_until(lambda: fetch(url + "/readyz")[0] == 200, timeout=300)
        # Scored forecasts: at 600x a step passes every 0.1 s, so the 24th step of the first forecasts lands soon.
        wait_until(lambda: len(samples(fetch(url + "/metrics")[1], "promcast_forecast_error_mae")) == 24, timeout=60)
        text = fetch(url + "/metrics")[1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for family in ("promcast_forecast", "promcast_forecast_upper", "promcast_forecast_error_mae"):
        steps = {s["h"] for s, _ in samples(text, family)}
        assert steps == {str(h) for h in range(1, 25)}, family
    assert {s["level"] for s, _ in samples(text, "promcast_forecast_upper")} == {"0.8", "0.95"}
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == check.stderr.strip() == "", check.stdout + check.stderr
    # The model is kept apart from the 12-step demo's, and was trained for 24 steps.
    (meta,) = (tmp_path / "m").glob("demo-diurnal-60s-h24/demo/versions/*/meta.json")
    assert json.loads(meta.read_text())["horizon"] == 24


def test_dashboard_is_generated_for_the_horizon_and_step(tmp_path) -> None:
    out = tmp_path / "dash.json"
    assert main(["dashboard", "--horizon", "24", "--step", "300", "--out", str(out)]) == 0
    (h,) = [v for v in json.loads(out.read_text())["templating"]["list"] if v["name"] == "h"]
    assert [o["text"] for o in h["options"]] == [str(i) for i in range(1, 25)]
    assert h["options"][0]["value"] == "5m"
    assert h["options"][23]["value"] == "2h"
    assert h["query"].split(", ")[11] == "12 : 1h"


def test_committed_dashboard_is_the_generated_default() -> None:
    committed = json.loads(TEMPLATE.read_text())
    assert render(committed, 12, 60) == committed
    assert render(committed, 13, 60) != committed
    assert h_variable(2, 90)["query"] == "1 : 90s, 2 : 3m"


def _fitted(horizon: int) -> Forecaster:
    series = make_workload("diurnal", 600, timedelta(minutes=1), seed=0)
    f = Forecaster("ar", window=24, horizon=horizon, step=timedelta(minutes=1), gate=None)
    return f.fit(series)


def test_a_model_of_another_horizon_is_refused_naming_both() -> None:
    target = TargetSettings(name="t", query="up", window=24, horizon=24, model="ar", history=timedelta(days=1))
    with pytest.raises(ArtifactError, match=r"horizon=12.*horizon=24"):
        validate_for_target(_fitted(12), target)
    validate_for_target(_fitted(24), target)  # its own horizon serves


def test_predict_next_takes_the_trained_horizon_only() -> None:
    f, recent = _fitted(24), np.linspace(1.0, 2.0, 50)
    assert f.predict_next(24, recent).shape == (24,)
    np.testing.assert_allclose(f.predict_next(24, recent), f.forecast(recent))
    with pytest.raises(ValueError, match="horizon=24, not 12"):
        f.predict_next_12(recent)
    assert _fitted(12).predict_next_12(recent).shape == (12,)


def test_horizon_is_validated_against_the_history() -> None:
    with pytest.raises(ConfigError, match=r"targets\.0.*input_length \+ horizon"):
        load_settings(targets=[{"name": "t", "query": "up", "window": 24, "horizon": 2000, "history": "P1D"}])
    with pytest.raises(ConfigError, match=r"targets\.0\.horizon"):
        load_settings(targets=[{"name": "t", "query": "up", "horizon": 0}])
