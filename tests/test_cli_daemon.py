"""`promcast run` and `promcast demo` as a user runs them: bad settings exit 2, --once, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from promcast.daemon.cli import main

from .support.http import fetch, wait_until

BAD = [
    (["run", "--target", "cpu"], "expected NAME=PROMQL"),
    (["run"], "no targets"),
    (["run", "--prometheus-url", "not a url", "--target", "a=up"], "prometheus.url"),
    (["run", "--listen", "localhost", "--target", "a=up"], "listen"),
    (["run", "--listen", "127.0.0.1:99999", "--target", "a=up"], "listen"),
    (["run", "--config", "/nonexistent/promcast.yaml", "--target", "a=up"], "cannot read it"),
    (["run", "--config", "settings.ini", "--target", "a=up"], ".yaml, .yml or .toml"),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_settings_exit_2_and_name_the_setting(argv, message, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


CONFIGS = {
    "unknown model": ("targets:\n  - name: cpu\n    query: up\n    model: prophet\n", "targets.0.model"),
    "window <= 0": ("targets:\n  - name: cpu\n    query: up\n    window: 0\n", "targets.0.window"),
    "negative step": ("targets:\n  - name: cpu\n    query: up\n    step_seconds: -5\n", "targets.0.step_seconds"),
    "wrong type": ("targets:\n  - name: cpu\n    query: up\n    window: many\n", "targets.0.window"),
    "unknown key": ("targets:\n  - name: cpu\n    query: up\n    colour: red\n", "targets.0.colour"),
    "bad url": ("prometheus:\n  url: ftp//x\ntargets:\n  - name: cpu\n    query: up\n", "prometheus.url"),
    "duplicate": ("targets:\n  - {name: a, query: up}\n  - {name: a, query: up}\n", "repeated: ['a']"),
    "malformed yaml": ("targets: [\n", "config file"),
    "short history": ("targets:\n  - {name: a, query: up, history: 600}\n", "history"),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_bad_config_files_exit_2(case, tmp_path, capsys) -> None:
    text, message = CONFIGS[case]
    cfg = tmp_path / "promcast.yaml"
    cfg.write_text(text)
    assert main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_environment_variables_are_read_and_bad_ones_named(monkeypatch, capsys) -> None:
    monkeypatch.setenv("PROMCAST_READY_MAX_AGE_STEPS", "-1")
    assert main(["run", "--target", "a=up"]) == 2
    assert "ready_max_age_steps" in capsys.readouterr().err


def test_toml_config_is_read(tmp_path, capsys) -> None:
    cfg = tmp_path / "promcast.toml"
    cfg.write_text('[[targets]]\nname = "cpu"\nquery = "up"\nwindow = -3\n')
    assert main(["run", "--config", str(cfg)]) == 2
    assert "targets.0.window" in capsys.readouterr().err


def test_demo_once_prints_12_forecasts_and_each_workload_keeps_its_own_model(tmp_path, capsys) -> None:
    versions = {}
    for workload in ("diurnal", "bursty"):
        args = ["demo", "--once", "--workload", workload, "--model-dir", str(tmp_path), "--log-format", "json"]
        assert main(args) == 0
        (result,) = json.loads(capsys.readouterr().out)
        assert result["ok"]
        assert result["target"] == "demo"
        assert len(result["forecasts"][0]["values"]) == 12
        versions[workload] = result["version"]
    assert versions["diurnal"] != versions["bursty"], "the bursty demo reused the diurnal demo's model"
    for workload, version in versions.items():
        assert (tmp_path / f"demo-{workload}-60s" / "demo" / "versions" / version).is_dir()


@pytest.mark.parametrize(
    ("flag", "value", "setting"),
    [
        ("--speed", "-1", "demo.speed"),
        ("--speed", "0", "demo.speed"),
        ("--series", "20000", "demo.series"),
        ("--series", "0", "demo.series"),
        ("--step", "0", "demo.step_seconds"),
    ],
)
def test_invalid_demo_flags_exit_2_naming_the_setting(flag, value, setting, tmp_path, capsys) -> None:
    assert main(["demo", "--once", "--model-dir", str(tmp_path), flag, value]) == 2
    assert setting in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing was trained or written"


def _start(args: list[str], tmp_path) -> tuple[subprocess.Popen[str], str]:
    """Start the daemon with its log in a file (a pipe nobody drains would fill and block it)."""
    env = {**os.environ, "PROMCAST_LOG_FORMAT": "json"}
    cmd = [sys.executable, "-m", "promcast", *args, "--listen", "127.0.0.1:0", "--model-dir", str(tmp_path / "m")]
    log = tmp_path / "daemon.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stderr=fh, text=True, env=env)

    def started() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode}: {log.read_text()[-2000:]}")
        for line in log.read_text().splitlines():
            if '"event": "started"' in line:
                return str(json.loads(line)["listen"])
        return None

    return proc, wait_until(started, timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_demo_cleanly(sig, tmp_path) -> None:
    proc, url = _start(["demo", "--speed", "600"], tmp_path)
    try:
        wait_until(lambda: fetch(url + "/readyz")[0] == 200, timeout=300)
        proc.send_signal(signal.SIGHUP)  # reload: must not stop it
        time.sleep(0.5)
        assert proc.poll() is None
        assert fetch(url + "/healthz")[0] == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert not list((tmp_path / "m").rglob(".*tmp*")), "no half-written artifact is left behind"
