"""Training a target's model from its own history: used on first start and by the retrain job."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from promcast.daemon.models.child import run_child
from promcast.daemon.settings import TargetSettings
from promcast.daemon.sources import Source
from promcast.daemon.sources.prometheus import page_ranges
from promcast.daemon.types import SeriesKey

if TYPE_CHECKING:
    from promcast.forecaster import Forecaster, TrainConfig

__all__ = [
    "SAMPLE_BUDGET",
    "TrainingFailed",
    "TrainingLimits",
    "TrainingStopped",
    "fit_target",
    "longest_history",
    "train_in_child",
]

# The most samples one answer should hold while the first model's history is read: prometheus-api-client parses
# every sample into a Python list and a string, so the daemon's peak grows with the largest answer
# (benchmarks/first_start.py measures it).
SAMPLE_BUDGET = 200_000


class TrainingFailed(Exception):
    """The training process died (killed, out of memory, past its timeout) before it published a model."""


class TrainingStopped(Exception):
    """The daemon is stopping: the training was cut short and published nothing."""


@dataclass(frozen=True)
class TrainingLimits:
    """When a first training must end: the daemon's stop event, or ``timeout`` seconds after ``started``.

    The timeout (``train_timeout_seconds``) covers the history read and the fit together."""

    stop: threading.Event = field(default_factory=threading.Event)
    timeout: float = math.inf
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.timeout - (time.monotonic() - self.started)

    def check(self) -> None:
        """Raise TrainingStopped or TrainingFailed if the training must end now."""
        if self.stop.is_set():
            raise TrainingStopped("the daemon is stopping")
        if self.remaining() <= 0:
            raise self.expired()

    def expired(self) -> TrainingFailed:
        return TrainingFailed(f"the first training ran past train_timeout_seconds ({self.timeout:g} s) and was stopped")


def longest_history(
    source: Source,
    target: TargetSettings,
    end: datetime,
    select: Callable[[dict[SeriesKey, pd.Series]], dict[SeriesKey, pd.Series]] = dict,
    budget: int = SAMPLE_BUDGET,
    limits: TrainingLimits | None = None,
) -> dict[SeriesKey, pd.Series]:
    """The whole history of the target's series with the most points (among those ``select`` keeps).

    Read in time chunks of about ``budget`` samples across all series, twice: once to count each series' points,
    once to keep the chosen series. Reading a week of 1,000 series at once would parse 10 million samples into
    Python objects inside the daemon; this way no answer holds more than about ``budget``. ``limits`` is checked
    before every request: a stop or a passed timeout ends the read between pages.
    """
    check = (limits or TrainingLimits()).check
    recent = select(
        source.fetch(target, end - target.step * (target.input_length + target.horizon), end)
    )  # how many series
    if not recent:
        raise ValueError("the query returned no series to train on")
    chunk = max(target.input_length + target.horizon, budget // len(recent))
    pages = page_ranges(end - target.history, end, target.step, chunk)
    counts: dict[SeriesKey, int] = {}
    for lo, hi in pages:
        check()
        for key, series in select(source.fetch(target, lo, hi)).items():
            counts[key] = counts.get(key, 0) + len(series)
    if not counts:
        raise ValueError("the query returned no series to train on")
    best = max(sorted(counts), key=lambda k: counts[k])  # ties: the first label set in sorted order
    pieces = []
    for lo, hi in pages:
        check()
        if best in (data := source.fetch(target, lo, hi)):
            pieces.append(data[best])
    if not pieces:
        raise ValueError(f"series {dict(best)} vanished while its history was read")
    series = pd.concat(pieces) if len(pieces) > 1 else pieces[0]
    return {best: series[~series.index.duplicated(keep="last")].sort_index()}


def training_series(history: dict[SeriesKey, pd.Series]) -> pd.Series:
    """The series to train the target's global model on: the one with the most points.

    The default models normalise every input window by its own level and spread, so one model trained on
    one series serves every series of the target.
    """
    if not history:
        raise ValueError("the query returned no series to train on")
    return max(history.values(), key=len)


def _training(target: TargetSettings, seed: int, progress: bool = False) -> TrainConfig:
    from promcast.forecaster.forecaster import default_training

    changes: dict[str, object] = {"seed": seed, "progress": None if progress else False}  # None: a bar on a terminal
    if target.epochs is not None:
        changes["epochs"] = target.epochs
    return dataclasses.replace(default_training(target.model), **changes)  # type: ignore[arg-type]


def fit_target(
    target: TargetSettings, history: dict[SeriesKey, pd.Series], seed: int = 0, progress: bool = False
) -> Forecaster:
    """Fit the target's model on its longest series; ``progress``: an epoch bar on a terminal. Imports torch: the
    daemon calls it only in a child."""
    from promcast.forecaster import Forecaster

    series = training_series(history)
    f = Forecaster(
        target.model,
        window=target.window,
        horizon=target.horizon,
        scaler=target.scaler,
        step=target.step,
        max_gap=target.max_gap,
        training=_training(target, seed, progress),
        **target.hparams,
    )
    return f.fit(series, step=target.step)


def train_in_child(
    root: Path,
    keep: int,
    target: TargetSettings,
    history: dict[SeriesKey, pd.Series],
    seed: int = 0,
    limits: TrainingLimits | None = None,
) -> tuple[str, Any]:
    """Fit the target's model in a fresh process (``python -m promcast.daemon.models.training``) that publishes it
    to the store.

    Returns the new version and its validation scores. The daemon itself never trains: torch's optimiser
    imports torch._dynamo and sympy on first use (tens of MB that stay resident), and training's
    buffers fragment the heap. Only the series to train on crosses to the child, as JSON on its stdin.
    A fit that refuses the data raises ValueError here too; a child that dies raises TrainingFailed. A stop
    or a passed timeout (``limits``) ends the child (SIGTERM, then SIGKILL) and raises TrainingStopped or
    TrainingFailed; the child publishes nothing once SIGTERM has reached it.
    """
    limits = limits or TrainingLimits()
    series = training_series(history)
    job = {
        "root": str(root),
        "keep": keep,
        "seed": seed,
        "target": target.model_dump(mode="json"),
        "index": pd.DatetimeIndex(series.index).as_unit("ns").asi8.tolist(),
        "values": series.to_numpy(dtype=float).tolist(),
    }
    limits.check()
    cmd = [sys.executable, "-m", "promcast.daemon.models.training"]
    done = run_child(cmd, limits.stop, limits.remaining(), input=json.dumps(job))
    if done.ended_by == "stop":
        raise TrainingStopped("the daemon is stopping: the training process was stopped")
    if done.ended_by == "timeout":
        raise limits.expired()
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if done.returncode == 0 and "version" in answer:
        return str(answer["version"]), answer.get("validation")
    if "error" in answer:
        raise ValueError(answer["error"])
    tail = done.stderr.strip().splitlines()[-3:]
    raise TrainingFailed(f"the training process exited with {done.returncode}: {' | '.join(tail)}")


def _child(stdin: str) -> dict[str, Any]:
    from promcast.daemon.models.store import ModelStore

    job = json.loads(stdin)
    target = TargetSettings.model_validate(job["target"])
    index = pd.to_datetime(np.asarray(job["index"], dtype=np.int64), unit="ns", utc=True)
    series = pd.Series(np.asarray(job["values"], dtype=float), index=index)
    try:
        f = fit_target(target, {(): series}, job["seed"])
    except ValueError as exc:
        return {"error": str(exc)}
    _SIGTERM["publishing"] = True
    version = ModelStore(Path(job["root"]), target.name, job["keep"]).publish(f)
    _SIGTERM["publishing"] = False
    return {"version": version, "validation": f.meta.get("validation")}


# A SIGTERM before the publish ends the child at once: nothing is written. One during the publish (a few
# renames) waits for it, so the store never holds half a version; the daemon has stopped listening by then.
_SIGTERM = {"publishing": False, "pending": False}


def _on_sigterm(signum: int, _frame: object) -> None:
    if not _SIGTERM["publishing"]:
        os._exit(128 + signum)
    _SIGTERM["pending"] = True


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)
    answer = _child(sys.stdin.read())
    print(json.dumps(answer), flush=True)
    raise SystemExit(128 + signal.SIGTERM if _SIGTERM["pending"] else 1 if "error" in answer else 0)
