"""One source factory: the setting ``source`` picks what the daemon and the retrain job both read."""

from __future__ import annotations

import json
from datetime import timedelta

from promcast.daemon.cli import main
from promcast.daemon.models.retrain_runner import child_env
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import load_settings
from promcast.daemon.sources import make_source
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.daemon.sources.prometheus import PrometheusSource

DEMO_TARGET = {"name": "demo", "query": DEMO_QUERY, "window": 24, "history": "P1D", "model": "ar"}


def test_the_setting_picks_the_source() -> None:
    assert isinstance(make_source(load_settings()), PrometheusSource)
    settings = load_settings(source="demo", demo={"step_seconds": 300})
    source = make_source(settings)
    assert isinstance(source, DemoSource)
    assert source.step.total_seconds() == 300


def test_the_retrain_job_reads_the_configured_source(tmp_path, monkeypatch, capsys) -> None:
    # No Prometheus runs here: a retrain that built its own Prometheus source would fail to connect.
    monkeypatch.setenv("PROMCAST_SOURCE", "demo")
    monkeypatch.setenv("PROMCAST_TARGETS", json.dumps([DEMO_TARGET]))
    monkeypatch.setenv("PROMCAST_PROMETHEUS__URL", "http://127.0.0.1:9")  # refuses connections
    assert main(["train", "--target", "demo", "--model-dir", str(tmp_path), "--log-format", "json"]) == 0
    # The demo's data ends at the wall clock's now, so whether the AR challenger beats naive on it varies with the
    # hour: what this test asks is that the retrain read the demo source and decided, whatever it decided.
    out = capsys.readouterr().out
    assert out.startswith(("promoted demo", "kept demo")), out
    report = ModelStore(tmp_path, "demo").latest_decision()
    assert report is not None
    assert report["scores"]["challenger"]["mae"] > 0
    assert report["scores"]["naive"]["mae"] > 0


def test_the_daemons_retrain_child_gets_the_source() -> None:
    settings = load_settings(source="demo", demo={"series": 3}, targets=[DEMO_TARGET])
    env = child_env(settings)
    assert env["PROMCAST_SOURCE"] == "demo"
    assert json.loads(env["PROMCAST_DEMO"])["series"] == 3


def _csv(tmp_path):
    import numpy as np
    import pandas as pd

    index = pd.date_range("2024-03-01", periods=3000, freq="1min")  # naive timestamps: read as UTC
    values = 10 + 5 * np.sin(2 * np.pi * np.arange(3000) / 60)
    path = tmp_path / "load.csv"
    pd.DataFrame({"timestamp": index, "value": values}).to_csv(path, index=False)
    return path, index


def test_the_csv_source_replays_a_file_from_its_start_share(tmp_path) -> None:
    from promcast.daemon.sources.replay import ReplaySource

    path, index = _csv(tmp_path)
    source = make_source(load_settings(source="csv", csv={"path": str(path), "start": 0.5, "speed": 1.0}))
    assert isinstance(source, ReplaySource)
    first = index[1499].tz_localize("UTC")  # the point at half the file
    assert first <= source.now() < first + timedelta(minutes=1)
    target = load_settings(targets=[{"name": "t", "query": "q", "window": 24, "history": "P1D"}]).targets[0]
    ((key, got),) = source.fetch(target, index[0].tz_localize("UTC"), index[-1].tz_localize("UTC")).items()
    assert key == (("series", "load"),)
    assert len(got) == 1500


def test_the_csv_source_needs_its_path(tmp_path) -> None:
    import pytest

    from promcast.daemon.settings import ConfigError

    with pytest.raises(ConfigError, match=r"needs csv\.path"):
        load_settings(source="csv")
    with pytest.raises(ConfigError, match=r"csv\.path.*not a readable file"):
        load_settings(source="csv", csv={"path": str(tmp_path / "missing.csv")})


def test_the_daemon_forecasts_a_csv_through_the_one_factory(tmp_path, capsys) -> None:
    path, _index = _csv(tmp_path)
    config = tmp_path / "promcast.yaml"
    config.write_text(
        f"source: csv\ncsv: {{path: {path}, start: 0.9}}\nmodel_dir: {tmp_path / 'models'}\n"
        "targets:\n  - {name: load, query: replay, window: 24, history: P1D, model: ar}\n"
    )
    assert main(["run", "--config", str(config), "--once", "--log-format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["ok"]
    assert len(result["forecasts"][0]["values"]) == 12
    assert result["forecasts"][0]["labels"] == {"series": "load"}
