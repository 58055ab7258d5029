"""The model an offline replay forecasts with: one fitted on the series' first part (torch), or a frozen one that is
never fitted, the pretrained model (``--model pretrained``) or a stored artifact (``--artifact DIR``), both on the
NumPy runtime so that a serving install without torch can replay them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from promcast.forecaster import PRETRAINED, PRETRAINED_MODEL, ArtifactError, Predictor, load_pretrained
from promcast.forecaster.artifact import read_meta
from promcast.forecaster.catalog import CATALOG

__all__ = ["Frozen", "load_model", "replay_model"]


@dataclass(frozen=True, eq=False)
class Frozen:
    """A model loaded whole, not fitted here: its predictor, the name the report gives it, and its folder."""

    predictor: Predictor
    name: str  # "pretrained", or the artifact's model
    artifact: str  # the artifact folder it was loaded from


def load_model(model: str | None, artifact: str | None) -> Frozen | None:
    """The frozen model ``--artifact`` or ``--model pretrained`` names; None where ``model`` is to be fitted.
    ValueError names a folder that holds no artifact, or one the NumPy runtime cannot serve."""
    try:
        if artifact is not None:
            return _load_artifact(artifact)
        if model == PRETRAINED_MODEL:
            return Frozen(load_pretrained(), PRETRAINED_MODEL, str(PRETRAINED))
    except ArtifactError as exc:  # not a ValueError: the commands report ValueError as a failed replay
        raise ValueError(str(exc)) from exc
    return None


def _load_artifact(path: str) -> Frozen:
    from promcast.forecaster.numpy_runtime import load_frozen

    name = read_meta(path)["model"]["name"]
    spec = CATALOG.get(name)
    if spec is None or spec.numpy is None:  # load_frozen would import torch for it
        raise ValueError(
            f"--artifact {path}: model {name!r} has no NumPy forward; the replay loads artifacts through the "
            "NumPy runtime only (mlp, nlinear and the baselines), never torch"
        )
    return Frozen(load_frozen(path), name, str(path))


def replay_model(
    history: pd.Series,
    frozen: Frozen | None,
    model: str,
    window: int,
    horizon: int,
    val_ratio: float,
    fast: bool = False,
    seed: int = 0,
) -> tuple[Predictor, dict[str, Any]]:
    """The frozen model as it is, or ``model`` fitted on ``history`` (``forecaster.offline.fit_first_part``); with
    what the report says of it (daemon.offline.results.FittedModel's fields)."""
    if frozen is None:
        from promcast.forecaster.offline import fit_first_part  # imports torch

        return fit_first_part(history, model, window, horizon, val_ratio, fast, seed)
    p = frozen.predictor
    step = pd.Timedelta(history.index[1] - history.index[0])
    if p.step is not None and p.step != step:  # a model of one step would misread a series of another
        raise ValueError(f"{frozen.artifact}: the model forecasts steps of {p.step}, the series has steps of {step}")
    about = {"name": frozen.name, "window": p.window, "input_length": p.input_length, "fit_points": 0}
    return p, {**about, "artifact": frozen.artifact}
