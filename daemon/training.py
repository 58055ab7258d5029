"""Training a target's model from its own history: used on first start and by the retrain job."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .settings import TargetSettings
from .source import SeriesKey, Source

if TYPE_CHECKING:
    from forecaster import Forecaster, TrainConfig

__all__ = ["TrainingFailed", "fit_target", "history_of", "train_in_child"]


class TrainingFailed(Exception):
    """The training process died (killed, out of memory) before it published a model."""


def history_of(source: Source, target: TargetSettings, end: datetime) -> dict[SeriesKey, pd.Series]:
    return source.fetch(target, end - target.history, end)


def training_series(history: dict[SeriesKey, pd.Series]) -> pd.Series:
    """The series to train the target's global model on: the one with the most points.

    The default models normalise every input window by its own level and spread, so one model trained on
    one series serves every series of the target.
    """
    if not history:
        raise ValueError("the query returned no series to train on")
    return max(history.values(), key=len)


def _training(target: TargetSettings, seed: int) -> TrainConfig:
    from forecaster.forecaster import default_training

    changes: dict[str, object] = {"seed": seed, "progress": False}
    if target.epochs is not None:
        changes["epochs"] = target.epochs
    return dataclasses.replace(default_training(target.model), **changes)  # type: ignore[arg-type]


def fit_target(target: TargetSettings, history: dict[SeriesKey, pd.Series], seed: int = 0) -> Forecaster:
    """Fit the target's model on its longest series. Imports torch: the daemon calls it only in a child."""
    from forecaster import Forecaster

    series = training_series(history)
    f = Forecaster(
        target.model,
        window=target.window,
        horizon=12,
        step=target.step,
        max_gap=target.max_gap,
        training=_training(target, seed),
        **target.hparams,
    )
    return f.fit(series, step=target.step)


def train_in_child(
    root: Path, keep: int, target: TargetSettings, history: dict[SeriesKey, pd.Series], seed: int = 0
) -> tuple[str, Any]:
    """Fit the target's model in a fresh process (``python -m daemon.training``) that publishes it to the store.

    Returns the new version and its validation scores. The daemon itself never trains: torch's optimiser
    imports torch._dynamo and sympy on first use (71 MB that stay resident, BENCHMARKS.md), and training's
    buffers fragment the heap. Only the series to train on crosses to the child, as JSON on its stdin.
    A fit that refuses the data raises ValueError here too; a child that dies raises TrainingFailed.
    """
    series = training_series(history)
    job = {
        "root": str(root),
        "keep": keep,
        "seed": seed,
        "target": target.model_dump(mode="json"),
        "index": pd.DatetimeIndex(series.index).as_unit("ns").asi8.tolist(),
        "values": series.to_numpy(dtype=float).tolist(),
    }
    cmd = [sys.executable, "-m", "daemon.training"]
    proc = subprocess.run(cmd, input=json.dumps(job), capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if proc.returncode == 0 and "version" in answer:
        return str(answer["version"]), answer.get("validation")
    if "error" in answer:
        raise ValueError(answer["error"])
    tail = proc.stderr.strip().splitlines()[-3:]
    raise TrainingFailed(f"the training process exited with {proc.returncode}: {' | '.join(tail)}")


def _child(stdin: str) -> dict[str, Any]:
    from .store import ModelStore

    job = json.loads(stdin)
    target = TargetSettings.model_validate(job["target"])
    index = pd.to_datetime(np.asarray(job["index"], dtype=np.int64), unit="ns", utc=True)
    series = pd.Series(np.asarray(job["values"], dtype=float), index=index)
    try:
        f = fit_target(target, {(): series}, job["seed"])
    except ValueError as exc:
        return {"error": str(exc)}
    version = ModelStore(Path(job["root"]), target.name, job["keep"]).publish(f)
    return {"version": version, "validation": f.meta.get("validation")}


if __name__ == "__main__":
    answer = _child(sys.stdin.read())
    print(json.dumps(answer), flush=True)
    raise SystemExit(1 if "error" in answer else 0)
