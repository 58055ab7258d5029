"""SIGTERM to `python -m daemon demo` while it trains its first model, and again mid-cycle: it exits 0 and
leaves no half-written file in the model directory; the store's `current` loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from daemon.store import ModelStore
from forecaster import Forecaster

from .support.http import fetch, wait_until


def _start(model_dir: Path, log: Path) -> subprocess.Popen[str]:
    """The demo on 10-minute steps: three days of history are 432 points, so its first training is short."""
    env = {**os.environ, "PROMCAST_LOG_FORMAT": "json"}
    cmd = [sys.executable, "-m", "daemon", "demo", "--step", "600", "--speed", "6000", "--listen", "127.0.0.1:0"]
    with open(log, "w") as fh:  # a file, not a pipe: a pipe nobody drains would fill and block the daemon
        return subprocess.Popen([*cmd, "--model-dir", str(model_dir)], stderr=fh, text=True, env=env)


def _event(proc: subprocess.Popen[str], log: Path, name: str) -> dict[str, object] | None:
    if proc.poll() is not None:
        raise AssertionError(f"daemon exited with {proc.returncode}: {log.read_text()[-2000:]}")
    for line in log.read_text().splitlines():
        if line.startswith("{") and json.loads(line).get("event") == name:
            return dict(json.loads(line))
    return None


def _stop(proc: subprocess.Popen[str]) -> float:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=300) == 0
    finally:
        proc.kill()
    return time.monotonic() - t0


def _leftovers(model_dir: Path) -> list[str]:
    return [str(p) for p in model_dir.rglob(".*") if p.name != ".lock"]


def test_sigterm_during_training_and_mid_cycle_leaves_no_half_written_files(tmp_path: Path) -> None:
    models, log = tmp_path / "m", tmp_path / "daemon.log"
    proc = _start(models, log)
    wait_until(lambda: _event(proc, log, "training_first_model"), timeout=60, every=0.05)
    during_training = _stop(proc)  # the scheduler waits for the cycle in flight: training finishes, then exit
    assert not _leftovers(models), _leftovers(models)
    store = ModelStore(models / "demo-diurnal-600s", "demo")  # the demo keeps each workload and step apart
    # The training in flight was allowed to finish: the model it trained is current, and it loads.
    assert store.current_version() is not None, _leftovers(models)
    Forecaster.load(store.current_path())

    proc = _start(models, log)
    url = wait_until(lambda: (_event(proc, log, "started") or {}).get("listen"), timeout=60)
    wait_until(lambda: fetch(f"{url}/readyz")[0] == 200, timeout=300)
    time.sleep(0.25)  # cycles fire every 0.1 s (600 s steps at speed 6000): the signal lands among them
    mid_cycle = _stop(proc)
    assert not _leftovers(models), _leftovers(models)
    Forecaster.load(store.current_path())
    print(f"\nSIGTERM: during training exit after {during_training:.2f}s, mid-cycle exit after {mid_cycle:.2f}s")
