"""Child processes that the daemon's stop event or a deadline ends: SIGTERM first, SIGKILL after a grace period.

The first-start training and the scheduled retrain both run through ``run_child``, so both stop the same way.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["GRACE_SECONDS", "ChildResult", "run_child"]

POLL_SECONDS = 0.2  # how soon a stop or a passed deadline is noticed
GRACE_SECONDS = 5.0  # a child still running this long after SIGTERM is killed


@dataclass(frozen=True)
class ChildResult:
    returncode: int
    stdout: str
    stderr: str  # empty unless captured
    ended_by: Literal["stop", "timeout"] | None  # None: the child exited on its own


def run_child(
    cmd: list[str],
    stop: threading.Event,
    timeout: float,
    *,
    input: str | None = None,
    env: dict[str, str] | None = None,
    capture_stderr: bool = True,
) -> ChildResult:
    """Run ``cmd`` with ``input`` on its stdin; end it when ``stop`` is set or ``timeout`` seconds pass.

    The child runs in its own session, so a terminal's Ctrl-C reaches the daemon only, which then stops it
    here. Any exception in the caller's thread (KeyboardInterrupt in ``--once``) ends the child too: a child
    left running would train on and publish after the daemon is gone.
    """
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if capture_stderr else None,
        text=True,
        env=env,
        start_new_session=True,
    )
    # One communicate() in a helper thread feeds stdin and drains both pipes: retried after a timeout, it
    # would never write the rest of an input larger than the pipe's buffer.
    io: dict[str, Any] = {}
    pump = threading.Thread(target=_communicate, args=(proc, input, io), name="child-io", daemon=True)
    pump.start()
    deadline = time.monotonic() + timeout
    ended_by: Literal["stop", "timeout"] | None = None
    try:
        while pump.is_alive():
            pump.join(POLL_SECONDS)
            reason: Literal["stop", "timeout"] | None = (
                "stop" if stop.is_set() else "timeout" if time.monotonic() >= deadline else None
            )
            if reason is not None and pump.is_alive():
                ended_by = reason
                _end(proc, pump)
    except BaseException:  # the caller's thread was interrupted: the child must not outlive it
        if pump.is_alive():
            _end(proc, pump)
        raise
    if "error" in io:
        raise io["error"]
    return ChildResult(proc.returncode, io.get("out") or "", io.get("err") or "", ended_by)


def _communicate(proc: subprocess.Popen[str], input: str | None, io: dict[str, Any]) -> None:
    try:
        io["out"], io["err"] = proc.communicate(input)
    except BaseException as exc:  # handed to the caller's thread
        io["error"] = exc


def _end(proc: subprocess.Popen[str], pump: threading.Thread) -> None:
    proc.terminate()
    pump.join(GRACE_SECONDS)
    if pump.is_alive():
        proc.kill()
        pump.join()
