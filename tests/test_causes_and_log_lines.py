"""Every line the daemon writes to stderr is one JSON object, third-party loggers' included, and a failure keeps
its cause: "no model" says why there is none, and a crash inside a cycle is counted under its own stage."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.settings import PrometheusSettings, Settings, TargetSettings
from promcast.daemon.sources.prometheus import PrometheusSource
from promcast.daemon.types import SeriesKey

from .support.http import fetch, samples, wait_until


def _refusing_url() -> str:
    """A local port that nothing listens on: every connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def once_refused(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """`promcast run --once` against a refusing Prometheus, with one retry: urllib3 logs "Retrying ..."."""
    models = tmp_path_factory.mktemp("models")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMCAST_")}
    env.update({"PROMCAST_PROMETHEUS__RETRIES": "1", "PROMCAST_PROMETHEUS__BACKOFF_SECONDS": "0"})
    # It trains first (no pretrained model first): the model's absence has a cause, the refused history read.
    env["PROMCAST_TARGETS"] = json.dumps([{"name": "cpu", "query": "up", "first_model": "train"}])
    cmd = [sys.executable, "-m", "promcast", "run", "--once", "--prometheus-url", _refusing_url()]
    cmd += ["--model-dir", str(models)]  # stderr is a pipe: log_format auto means JSON
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_every_stderr_line_is_one_json_object_third_party_loggers_included(once_refused) -> None:
    lines = once_refused.stderr.splitlines()
    assert lines, "the run logs its failure"
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON object: {line!r}\nstderr:\n{once_refused.stderr[-3000:]}") from None
    assert all(isinstance(e, dict) and "event" in e and "level" in e and "timestamp" in e for e in events)
    retries = [e for e in events if e.get("logger") == "urllib3.connectionpool"]
    assert retries, events
    assert all(e["event"].startswith("Retrying") and e["level"] == "warning" for e in retries), events
    assert "model_unavailable" in {e["event"] for e in events}


def test_once_says_why_there_is_no_model(once_refused) -> None:
    assert once_refused.returncode == 1
    (result,) = json.loads(once_refused.stdout)
    error = result["error"]
    assert error.startswith("no model: cannot train the first model: SourceUnavailable: "), error
    assert "ConnectionError" in error, error
    assert "127.0.0.1" in error, error


@pytest.fixture
def refused_daemon(tmp_path: Path) -> Iterator[str]:
    prom = PrometheusSettings(url=_refusing_url(), timeout_seconds=1, retries=0, backoff_seconds=0)
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models", prometheus=prom)
    source = PrometheusSource(settings.prometheus)
    target = TargetSettings(name="cpu", query="up", step_seconds=1, window=8, history=timedelta(seconds=60))
    daemon = Daemon(settings, source, [target], model_poll_seconds=60)
    daemon.start()
    assert daemon.server is not None
    try:
        yield f"http://127.0.0.1:{daemon.server.port}"
    finally:
        daemon.shutdown()
        source.close()


def test_readyz_says_why_there_is_no_model(refused_daemon: str) -> None:
    def reason() -> Any:
        code, body = fetch(refused_daemon + "/readyz")
        return code == 503 and "SourceUnavailable" in body and json.loads(body)

    problems = wait_until(reason, timeout=30)["problems"]
    assert problems[0].startswith("cpu: no model: cannot train the first model: SourceUnavailable: "), problems


class Buggy:
    """A source with a bug: it raises what no stage of the cycle expects."""

    def now(self) -> datetime:
        return datetime(2026, 1, 2, tzinfo=UTC)

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        raise RuntimeError("a bug in the source")


def test_a_crash_inside_a_cycle_counts_under_stage_cycle_not_scheduler(tmp_path: Path) -> None:
    target = TargetSettings(name="cpu", query="up", step_seconds=60, window=8, history=timedelta(hours=1))
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models"), Buggy(), [target])
    result = daemon.run_once()[0]
    assert not result.ok
    assert "a bug in the source" in str(result.error)
    text = daemon.metrics.exposition().decode()
    errors = {labels["stage"]: v for labels, v in samples(text, "promcast_errors_total")}
    assert errors["cycle"] == 1, errors
    assert errors["scheduler"] == 0, errors
