"""SIGTERM to `python -m promcast demo`. During its first training the daemon stops the training child, publishes
nothing and exits 0 within 10 s, leaving the store as it was (no version, no `current`, no half-written file).
Mid-cycle, with a model in the store, it exits as fast and that model is still current and loads. A daemon
stopped the moment it started leaves no thread dying with a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from promcast.daemon.app import Daemon
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import Settings, TargetSettings
from promcast.forecaster import Forecaster

from .support.http import fetch, wait_until
from .support.scripted import Scripted

# The bound: well inside the shipped TimeoutStopSec=60 and terminationGracePeriodSeconds: 60.
STOP_WITHIN = 10.0


def _start(model_dir: Path, log: Path, first_model: str = "train") -> subprocess.Popen[str]:
    """The demo on its default 1-minute step, training first: three days of history, a training of minutes here.
    With ``first_model="pretrained"`` the pretrained model serves and the own model trains behind it."""
    env = {**os.environ, "PROMCAST_LOG_FORMAT": "json"}
    cmd = [
        sys.executable,
        "-m",
        "promcast",
        "demo",
        "--speed",
        "600",
        "--first-model",
        first_model,
        "--listen",
        "127.0.0.1:0",
    ]
    with open(log, "w") as fh:  # a file, not a pipe: a pipe nobody drains would fill and block the daemon
        return subprocess.Popen([*cmd, "--model-dir", str(model_dir)], stderr=fh, text=True, env=env)


def _events(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]  # every line is one JSON object


def _started(proc: subprocess.Popen[str], log: Path) -> str | None:
    if proc.poll() is not None:
        raise AssertionError(f"daemon exited with {proc.returncode}: {log.read_text()[-2000:]}")
    return next((str(e["listen"]) for e in _events(log) if e["event"] == "started"), None)


def _training_child(pid: int, marker: bytes = b"promcast.daemon.models.training") -> int | None:
    """The pid of the daemon's child whose command line holds ``marker`` while it runs: by default the first
    training's `python -m promcast.daemon.models.training`."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            if _running(int(child)) and marker in _cmdline(int(child)):
                return int(child)
    return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


def _stop(proc: subprocess.Popen[str]) -> float:
    """SIGTERM; the exit code must be 0. Returns the seconds it took (the wait itself is generous)."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=6 * STOP_WITHIN)
    finally:
        proc.kill()
    took = time.monotonic() - t0
    assert code == 0, code
    return took


def _leftovers(model_dir: Path) -> list[str]:
    return [str(p) for p in model_dir.rglob(".*") if p.name != ".lock"]


def test_sigterm_during_the_first_training_stops_it_publishes_nothing_and_exits_within_10s(tmp_path: Path) -> None:
    models, log = tmp_path / "m", tmp_path / "daemon.log"
    proc = _start(models, log)
    wait_until(lambda: _started(proc, log), timeout=60)
    child = wait_until(lambda: _training_child(proc.pid), timeout=60, every=0.05)
    took = _stop(proc)
    assert took < STOP_WITHIN, f"exit took {took:.1f}s"
    wait_until(lambda: not _running(child), timeout=STOP_WITHIN)  # stopped, not left to train on and publish
    events = [str(e["event"]) for e in _events(log)]
    assert "training_stopped" in events, events
    assert not {"trained", "model_loaded", "cycle"} & set(events), events  # no model, so no forecast, ever
    store = ModelStore(models / "demo-diurnal-60s", "demo")  # the demo keeps each workload and step apart
    assert store.current_version() is None, store.versions()
    assert store.versions() == [], store.versions()
    assert not _leftovers(models), _leftovers(models)
    print(f"\nSIGTERM during the first training: exit after {took:.2f}s")


def test_sigterm_while_the_own_model_trains_behind_the_pretrained_one_stops_that_child(tmp_path: Path) -> None:
    """The own model's `promcast train` child runs from a background thread: the daemon must stop it before it
    exits, or the orphan would promote a model after "stopped"."""
    models, log = tmp_path / "m", tmp_path / "daemon.log"
    proc = _start(models, log, first_model="pretrained")
    wait_until(lambda: _started(proc, log), timeout=60)
    child = wait_until(lambda: _training_child(proc.pid, b"promcast\0train\0"), timeout=60, every=0.05)
    store = ModelStore(models / "demo-diurnal-60s", "demo")
    pretrained = store.current_version()
    took = _stop(proc)
    assert not _running(child), "the training child outlived the daemon"
    assert took < STOP_WITHIN, f"exit took {took:.1f}s"
    events = [str(e["event"]) for e in _events(log)]  # every line JSON: no BrokenPipeError traceback either
    assert events[-1] == "stopped", events[-5:]
    assert store.current_version() == pretrained, store.versions()
    assert len(store.versions()) == 1, store.versions()  # the pretrained install only: nothing was published
    assert not _leftovers(models), _leftovers(models)


def test_sigterm_mid_cycle_exits_within_10s_and_the_model_in_the_store_still_loads(tmp_path: Path) -> None:
    models, log = tmp_path / "m", tmp_path / "daemon.log"
    store = ModelStore(models / "demo-diurnal-60s", "demo")
    index = pd.date_range("2026-01-01", periods=400, freq="1min", tz="UTC")
    history = pd.Series(10 + np.sin(np.arange(400) / 9.0), index=index)
    version = store.publish(Forecaster("naive", window=288).fit(history, step="60s"))  # the demo's window and step
    proc = _start(models, log)
    url = wait_until(lambda: _started(proc, log), timeout=60)
    wait_until(lambda: fetch(f"{url}/readyz")[0] == 200, timeout=60)
    time.sleep(0.25)  # cycles fire every 0.1 s (60 s steps at speed 600): the signal lands among them
    took = _stop(proc)
    assert took < STOP_WITHIN, f"exit took {took:.1f}s"
    assert "cycle" in {e["event"] for e in _events(log)}
    assert not _leftovers(models), _leftovers(models)
    assert store.current_version() == version
    Forecaster.load(store.current_path())
    print(f"\nSIGTERM mid-cycle: exit after {took:.2f}s")


def test_a_daemon_stopped_as_it_starts_leaves_no_thread_dying(tmp_path: Path, monkeypatch) -> None:
    """The cycle at once and a shutdown at once: no thread of the daemon's (the scheduler's among them) may end
    with an exception, whose traceback would be the one line of the daemon's output that is not JSON."""
    died: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda a: died.append(f"{a.thread}: {a.exc_value!r}"))
    target = TargetSettings(
        name="load", query="load", step_seconds=60, window=8, history=timedelta(hours=2), model="naive"
    )
    for i in range(20):
        daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path / str(i)), Scripted(np.ones(100)), [target])
        daemon.start()
        daemon.shutdown()
    assert died == []


class _SlowRead(Scripted):
    """A source whose every read takes 1.5 s and is counted once it is done."""

    done = 0

    def __init__(self, values: np.ndarray) -> None:
        super().__init__(values)
        self.reading = threading.Event()

    def fetch(self, *args: object) -> dict:
        self.reading.set()
        time.sleep(1.5)
        out = super().fetch(*args)  # type: ignore[arg-type]
        self.done += 1
        return out


def test_shutdown_waits_for_the_cycle_at_once_to_finish(tmp_path: Path) -> None:
    target = TargetSettings(
        name="load", query="load", step_seconds=60, window=8, history=timedelta(hours=2), model="naive"
    )
    source = _SlowRead(np.ones(100))
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path), source, [target])
    daemon.start()
    assert source.reading.wait(30)  # the cycle at once is reading
    daemon.shutdown()
    assert source.done >= 1  # its read ended before shutdown returned: no cycle is cut off mid-way


def test_shutdown_waits_for_a_background_retrain_and_its_child(tmp_path: Path) -> None:
    """A retrain started from a cycle (the own model, drift) runs on a thread of its own. ``shutdown`` returns only
    once that thread has stopped its `promcast train` child: the process may exit right after."""
    from promcast.daemon.sources import make_source
    from promcast.daemon.sources.demo import demo_target

    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path, source="demo", targets=[demo_target()])
    daemon = Daemon(settings, make_source(settings), settings.targets)
    thread = daemon.retrain_in_background("demo", "a test", "first")
    child = wait_until(lambda: _training_child(os.getpid(), b"promcast\0train\0"), timeout=60, every=0.01)
    daemon.shutdown()
    assert not thread.is_alive(), "shutdown returned while the retrain thread still ran"
    assert not _running(child), "the training child outlived the shutdown"
    assert ModelStore(tmp_path, "demo").versions() == []
