"""Scheduled retraining: runs `promcast train` for one target in a child process, so forecasting never waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from .logs import get_logger
from .settings import Settings

__all__ = ["child_env", "run_train_process"]

log = get_logger("promcast.retrain")


def child_env(settings: Settings) -> dict[str, str]:
    """The daemon's settings as PROMCAST_* variables, so the child sees exactly what the daemon was started with
    (flags, environment and config file) without writing any secret to disk."""
    data = settings.model_dump(mode="json", exclude={"demo"})
    prometheus = settings.prometheus
    for key in ("bearer_token", "password"):
        secret = getattr(prometheus, key)
        data["prometheus"][key] = secret.get_secret_value() if secret is not None else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMCAST_")}
    env.update({f"PROMCAST_{k.upper()}": v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
    return env


def run_train_process(settings: Settings, target: str, stop: threading.Event) -> int:
    """Run one retrain of ``target`` and wait for it; stop it (SIGTERM) on shutdown or after the timeout.

    A stopped child leaves the store intact: every write it makes is a rename.
    """
    cmd = [sys.executable, "-m", "daemon", "train", "--target", target]
    t0 = time.monotonic()
    # The child's log lines join the daemon's stderr; its one result line comes back on stdout.
    proc = subprocess.Popen(cmd, env=child_env(settings), stdout=subprocess.PIPE, text=True, start_new_session=True)
    while proc.poll() is None:
        if stop.wait(0.5) or time.monotonic() - t0 > settings.retrain.timeout_seconds:
            proc.terminate()
            break
    out, _ = proc.communicate()
    code = proc.returncode
    tail = (out.strip().splitlines() or [""])[-1]
    level = log.info if code == 0 else log.error
    level("retrain_process", target=target, exit_code=code, seconds=round(time.monotonic() - t0, 2), result=tail)
    return code
