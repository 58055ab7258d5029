"""One source factory: the setting ``source`` picks what the daemon and the retrain job both read."""

from __future__ import annotations

import json

from daemon.cli import main
from daemon.demo import DEMO_QUERY, DemoSource
from daemon.prometheus import PrometheusSource
from daemon.retrain_runner import child_env
from daemon.settings import load_settings
from daemon.sources import make_source
from daemon.store import ModelStore

DEMO_TARGET = {"name": "demo", "query": DEMO_QUERY, "window": 24, "history": "P1D", "model": "ar"}


def test_the_setting_picks_the_source() -> None:
    assert isinstance(make_source(load_settings()), PrometheusSource)
    settings = load_settings(source="demo", demo={"step_seconds": 300})
    source = make_source(settings)
    assert isinstance(source, DemoSource) and source.step.total_seconds() == 300


def test_the_retrain_job_reads_the_configured_source(tmp_path, monkeypatch, capsys) -> None:
    # No Prometheus runs here: a retrain that built its own Prometheus source would fail to connect.
    monkeypatch.setenv("PROMCAST_SOURCE", "demo")
    monkeypatch.setenv("PROMCAST_TARGETS", json.dumps([DEMO_TARGET]))
    monkeypatch.setenv("PROMCAST_PROMETHEUS__URL", "http://127.0.0.1:9")  # refuses connections
    assert main(["train", "--target", "demo", "--model-dir", str(tmp_path), "--log-format", "json"]) == 0
    assert "promoted demo" in capsys.readouterr().out
    assert ModelStore(tmp_path, "demo").current_version() is not None


def test_the_daemons_retrain_child_gets_the_source() -> None:
    settings = load_settings(source="demo", demo={"series": 3}, targets=[DEMO_TARGET])
    env = child_env(settings)
    assert env["PROMCAST_SOURCE"] == "demo"
    assert json.loads(env["PROMCAST_DEMO"])["series"] == 3
