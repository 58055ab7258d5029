"""The promotion's champion, scored on holdout data it never trained on.

The first model is fitted on the whole history at first start, so the next retrain's holdout lies inside its
training data: scored as it is, it would be scored on what it learned. A champion whose recorded training ended
before the holdout, and the pretrained model (trained on other series), are scored as they are; one trained into the
holdout is replaced, for scoring only, by its recipe
(model, hyperparameters, scaling, training configuration, from its meta.json) fitted on the challenger's training
part. When that recipe is the challenger's, that fit is the challenger. What was scored goes into the report.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from promcast.daemon.models.serving import validate_for_target
from promcast.daemon.models.store import ModelStore
from promcast.daemon.models.training import training_series
from promcast.daemon.settings import TargetSettings
from promcast.daemon.types import SeriesKey
from promcast.forecaster import ArtifactError, Forecaster

__all__ = ["ChampionUnreadable", "Score", "score_champion", "training_period"]

Score = Callable[[Forecaster], dict[str, float]]  # a model's scores on the holdout windows


class ChampionUnreadable(Exception):
    """The champion could not be read now (an I/O error, not a corrupt artifact): the run stops, the champion stays."""


def training_period(meta: dict[str, Any]) -> dict[str, Any]:
    training = meta.get("training") or {}
    return {"start": training.get("start"), "end": training.get("end")}


def _recipe(meta: dict[str, Any]) -> Any:
    """What a model is fitted with, from its meta.json, in JSON's spelling (so that two recipes compare equal)."""
    training = meta.get("training") or {}
    config = {k: v for k, v in (training.get("config") or {}).items() if k != "progress"}
    recipe = {k: meta.get(k) for k in ("model", "window", "horizon", "max_gap")}
    recipe |= {"scaler": (meta.get("scaler") or {}).get("kind"), "val_ratio": training.get("val_ratio")}
    return json.loads(json.dumps(recipe | {"config": config}))


def _refit(meta: dict[str, Any], target: TargetSettings, train: dict[SeriesKey, pd.Series]) -> Forecaster:
    """The champion's recipe fitted on the challenger's training series."""
    from promcast.forecaster import TrainConfig

    r = _recipe(meta)
    try:
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in r["config"].items() if k in names} | {"progress": False})
        f = Forecaster(
            r["model"]["name"],
            window=r["window"],
            horizon=r["horizon"],
            scaler=r["scaler"],
            step=target.step,
            max_gap=r["max_gap"],
            val_ratio=r["val_ratio"],
            training=config,
            **r["model"]["hparams"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"its recipe does not rebuild from meta.json: {exc!r}") from exc
    return f.fit(training_series(train), step=target.step)


def _ended_before(trained: dict[str, Any], cut: pd.Timestamp) -> bool:
    """Whether a recorded training ended before ``cut``; an unknown end may have reached it."""
    try:
        ended = pd.Timestamp(trained["end"])
    except (TypeError, ValueError):
        return False
    if ended is pd.NaT:
        return False
    return bool((ended.tz_localize("UTC") if ended.tzinfo is None else ended) < cut)


def _unseen_score(
    f: Forecaster,
    target: TargetSettings,
    train: dict[SeriesKey, pd.Series],
    cut: pd.Timestamp,
    challenger: Forecaster,
    score: Score,
) -> tuple[dict[str, float], dict[str, Any]]:
    """The champion's holdout score from a model that never trained on the holdout, and what was scored."""
    period = training_period(f.meta)
    on: dict[str, Any] = {"artifact_training": period}
    if f.pretrained:  # its corpus (forecaster/pretrained/corpus.json) holds none of this target's data
        why = "the pretrained model that ships in the package: trained on a corpus without this target's data"
        return score(f), on | {"fit": "as trained", "why": why}
    if _ended_before(period, cut):
        why = f"its training ended at {period['end']}, before the holdout's start {cut.isoformat()}"
        return score(f), on | {"fit": "as trained", "why": why}
    why = f"its training (end {period['end']}) reaches into the holdout (start {cut.isoformat()})"
    if _recipe(f.meta) == _recipe(challenger.meta):
        why += "; its recipe is the challenger's, so the challenger is that recipe fitted on the training part"
        return score(challenger), on | {"fit": "its recipe on the training part (the challenger)", "why": why}
    return score(_refit(f.meta, target, train)), on | {"fit": "its recipe refit on the training part", "why": why}


def score_champion(
    store: ModelStore,
    target: TargetSettings,
    train: dict[SeriesKey, pd.Series],
    cut: pd.Timestamp,
    challenger: Forecaster,
    score: Score,
    probe: np.ndarray,
) -> tuple[str | None, Any, dict[str, Any] | None]:
    """(version, scores, what was scored) of the current model, or (version, error text, None) when unusable.

    ``train`` is the challenger's training part, ``cut`` the holdout's first step, ``score`` a model's holdout
    scores, and ``probe`` a window for the smoke prediction.

    A corrupt or unfit champion is unusable and may be replaced. One that cannot be read now raises
    ChampionUnreadable, and a ``current`` that is no link raises StoreError: the run stops, nothing is promoted."""
    version = store.current_version()
    if version is None:
        return None, "no current model", None
    try:
        f = Forecaster.load(store.versions_dir / version)
        validate_for_target(f, target, probe)
        scores, scored_on = _unseen_score(f, target, train, cut, challenger, score)
        return version, scores, scored_on
    except OSError as exc:
        raise ChampionUnreadable(f"champion {version} cannot be read now ({exc}); kept, nothing promoted") from exc
    except (ArtifactError, ValueError) as exc:
        return version, f"unusable: {exc}", None
