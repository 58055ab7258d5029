"""daemon.models.child.run_child, which the first-start training and the retrain job share: the whole input reaches the
child, and a stop or a timeout ends it (SIGTERM, then SIGKILL for a child that ignores SIGTERM)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from promcast.daemon.models.child import GRACE_SECONDS, run_child

from .support.http import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_an_input_larger_than_the_pipe_buffer_reaches_a_child_that_reads_it_late() -> None:
    cmd = [sys.executable, "-c", "import sys, time; time.sleep(0.5); print(len(sys.stdin.read()))"]
    done = run_child(cmd, threading.Event(), 60, input="x" * 1_000_000)  # a pipe holds 64 KiB
    assert (done.returncode, done.stdout.strip(), done.ended_by) == (0, "1000000", None), done.stderr


def test_a_timeout_ends_the_child_with_sigterm() -> None:
    done = run_child(SLEEPER, threading.Event(), 0.5)
    assert (done.ended_by, done.returncode) == ("timeout", -signal.SIGTERM)


def test_a_stop_ends_the_child_and_one_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    assert run_child(SLEEPER, stop, 60).ended_by == "stop"

    ready = tmp_path / "ignoring"
    stubborn = "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    stubborn += "pathlib.Path(sys.argv[1]).touch(); time.sleep(120)"
    stop = threading.Event()
    threading.Thread(target=lambda: wait_until(ready.exists, timeout=60) and stop.set(), daemon=True).start()
    done = run_child([sys.executable, "-c", stubborn, str(ready)], stop, 60)
    assert (done.ended_by, done.returncode) == ("stop", -signal.SIGKILL), f"killed {GRACE_SECONDS}s after SIGTERM"
