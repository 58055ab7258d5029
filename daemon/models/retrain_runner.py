"""Scheduled retraining: runs `promcast train` for one target in a child process, so forecasting never waits."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from promcast.daemon.logs import get_logger
from promcast.daemon.models.child import run_child
from promcast.daemon.settings import Settings

__all__ = ["child_env", "run_train_process"]

log = get_logger("promcast.retrain")


def child_env(settings: Settings) -> dict[str, str]:
    """The daemon's settings as PROMCAST_* variables, so the child sees exactly what the daemon was started with
    (flags, environment and config file) without writing any secret to disk."""
    data = settings.model_dump(mode="json")  # the source too: the child reads what the daemon reads
    prometheus = settings.prometheus
    for key in ("bearer_token", "password"):
        secret = getattr(prometheus, key)
        data["prometheus"][key] = secret.get_secret_value() if secret is not None else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMCAST_")}
    env.update({f"PROMCAST_{k.upper()}": v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
    return env


def run_train_process(settings: Settings, target: str, stop: threading.Event, trigger: str) -> int:
    """Run one retrain of ``target`` and wait for it; stop it on shutdown or after ``retrain.timeout_seconds``
    (SIGTERM, then SIGKILL after a grace period: ``daemon.models.child``, as the first-start training).

    A stopped child leaves the store intact: every write it makes is a rename. ``trigger``: the daemon's reason
    (cron, drift, first), recorded in the run's decision report so that the run is not counted again as manual.
    """
    cmd = [sys.executable, "-m", "promcast", "train", "--target", target, "--trigger", trigger]
    t0 = time.monotonic()
    # The child's log lines join the daemon's stderr; its one result line comes back on stdout.
    done = run_child(cmd, stop, settings.retrain.timeout_seconds, env=child_env(settings), capture_stderr=False)
    code = done.returncode
    tail = (done.stdout.strip().splitlines() or [""])[-1]
    level = log.info if code == 0 else log.error
    level(
        "retrain_process",
        target=target,
        exit_code=code,
        seconds=round(time.monotonic() - t0, 2),
        result=tail,
        ended_by=done.ended_by,
    )
    return code
