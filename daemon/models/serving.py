"""The model each target serves: loaded and validated aside, then swapped in as one reference under a lock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from promcast.daemon.http.families import ModelInfo
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import get_logger
from promcast.daemon.models.store import ModelStore, StoreError
from promcast.daemon.settings import TargetSettings
from promcast.forecaster import PRETRAINED, PRETRAINED_MODEL, ArtifactError, Predictor, load_pretrained
from promcast.forecaster.numpy_runtime import load_frozen

__all__ = [
    "LOAD_ERRORS",
    "ModelHolder",
    "ServedModel",
    "load_version",
    "newest_loadable",
    "pretrained_for",
    "validate_for_target",
]

log = get_logger("promcast.serving")

# What a version that does not load raises: a corrupt or unfit artifact, or a file system that cannot read it.
LOAD_ERRORS = (StoreError, ArtifactError, ValueError, OSError)


@dataclass(frozen=True)
class ServedModel:
    forecaster: Predictor
    version: str
    path: Path
    fallback_cause: str | None = None  # why `current` is not the one serving; None when it is
    passed_over: tuple[str, ...] = ()  # the versions refused before this one was found

    @property
    def trained_at(self) -> str:
        return str(self.forecaster.meta.get("trained_at", ""))

    @property
    def info(self) -> ModelInfo:
        """promcast_model_info's labels: the model is "pretrained" for the one that ships in the package; ``serves``
        is "naive" for a model that lost to naive on its own validation windows (``forecaster.verdict.judge``)."""
        f = self.forecaster
        name = PRETRAINED_MODEL if f.pretrained else f.model_name
        return ModelInfo(name, self.version, self.trained_at, f.runtime, f.serves)


def validate_for_target(f: Predictor, target: TargetSettings, probe: np.ndarray | None = None) -> None:
    """Raise ArtifactError unless ``f`` fits the target (window, horizon, step) and predicts finite values."""
    if f.horizon != target.horizon:
        raise ArtifactError(
            f"model was trained for horizon={f.horizon}, target {target.name!r} forecasts horizon={target.horizon}; "
            "retrain it (promcast train) for this horizon"
        )
    # A model without a gate reads its window alone, fewer points than the target reads: it still serves.
    if f.window != target.window or f.input_length > target.input_length:
        raise ArtifactError(
            f"model has window={f.window} input_length={f.input_length}; "
            f"target needs window={target.window} and reads input_length={target.input_length}"
        )
    if f.step is not None and abs(f.step.total_seconds() - target.step_seconds) > 1e-6:
        raise ArtifactError(f"model step {f.step.total_seconds():g}s differs from target step {target.step_seconds:g}s")
    window = probe if probe is not None else np.linspace(0.0, 1.0, f.input_length)
    try:
        f.predict(window[None, -f.input_length :])  # raises rather than return a non-finite forecast
    except ValueError as exc:
        raise ArtifactError(f"model fails its smoke prediction: {exc}") from exc


def pretrained_for(target: TargetSettings, probe: np.ndarray | None = None) -> ServedModel:
    """The pretrained model that ships in the package, validated for ``target`` (raises one of LOAD_ERRORS when
    it does not fit: another window or horizon); its version names its weights' checksum."""
    f = load_pretrained()
    validate_for_target(f, target, probe)
    return ServedModel(f, f"pretrained-{str(f.meta.get('weights_sha256', ''))[:12]}", PRETRAINED)


def load_version(
    store: ModelStore, target: TargetSettings, version: str, probe: np.ndarray | None = None
) -> ServedModel:
    """Load ``version`` and validate it for ``target``; raises one of LOAD_ERRORS when it does not serve.

    Through NumPy for the models that have a NumPy forward; through torch for an artifact the NumPy runtime
    refuses only with the target's ``torch_fallback``, and then with a warning that gives the NumPy reason."""
    path = store.versions_dir / version

    def fallback(reason: str) -> None:
        log.warning("torch_fallback", target=target.name, version=version, reason=reason)

    f = load_frozen(path, torch_fallback=target.torch_fallback, on_fallback=fallback)
    validate_for_target(f, target, probe)
    return ServedModel(f, version, path)


def newest_loadable(
    store: ModelStore, target: TargetSettings, versions: list[str], probe: np.ndarray | None = None
) -> tuple[ServedModel | None, list[tuple[str, str]]]:
    """The first of ``versions`` that loads, and (version, cause) for each one refused before it."""
    refused: list[tuple[str, str]] = []
    for version in versions:
        try:
            return load_version(store, target, version, probe), refused
        except LOAD_ERRORS as exc:
            refused.append((version, str(exc)))
    return None, refused


class ModelHolder:
    """Holds one target's served model. Readers take the reference once per cycle and keep it."""

    def __init__(self, store: ModelStore, target: TargetSettings) -> None:
        self.store, self.target = store, target
        self._lock = threading.Lock()
        self._served: ServedModel | None = None

    def get(self) -> ServedModel | None:
        with self._lock:
            return self._served

    def swap(self, served: ServedModel) -> None:
        with self._lock:
            self._served = served

    @property
    def fixed(self) -> bool:
        """True for a target with ``model: pretrained``: it serves the package's model, never the store's."""
        return self.target.model == PRETRAINED_MODEL

    def load(self, version: str | None = None, probe: np.ndarray | None = None) -> ServedModel:
        """Load ``version`` (default: current) from the store and validate it; does not swap it in."""
        if self.fixed:
            return pretrained_for(self.target, probe)
        version = version or self.store.current_version()
        if version is None:
            raise StoreError(f"{self.store.dir}: no current model")
        return load_version(self.store, self.target, version, probe)

    def load_serving(self, metrics: Metrics, probe: np.ndarray | None = None) -> ServedModel:
        """The model to serve when none does: ``current``, else the newest older version that loads.

        A ``current`` that does not load (corrupt, unfit, unreadable, or not a link at all) must not leave the
        target without forecasts until a person acts. Each refused version is logged with its cause and counted
        (stage ``model``); ``promcast_model_fallback`` is 1 while an older version serves. Versions newer than
        ``current`` were rolled back from and are never candidates. Raises StoreError, naming every cause,
        when no version loads; does not swap the model in. A ``fixed`` target's model is the pretrained one."""
        name = self.target.name
        if self.fixed:
            return pretrained_for(self.target, probe)
        try:
            current = self.store.current_version()
            if current is None:
                raise StoreError(f"{self.store.dir}: no current model")
            candidates, refused = [current, *self.store.older_versions(current)], []
        except StoreError as exc:
            if not self.store.has_current():
                raise
            current, candidates, refused = None, self.store.older_versions(None), [("current", str(exc))]
        served, more = newest_loadable(self.store, self.target, candidates, probe)
        refused += more
        for version, cause in refused:
            metrics.error(name, "model")
            log.error("model_refused", target=name, version=version, error=cause)
        if served is None:
            causes = "; ".join(f"{v}: {c}" for v, c in refused) or "no versions"
            raise StoreError(f"{self.store.dir}: no version loads ({causes})")
        metrics.model_fallback.labels(name).set(float(served.version != current))
        if served.version == current:
            return served
        cause = refused[0][1]
        log.warning("model_fallback", target=name, version=served.version, current=current, cause=cause)
        return replace(served, fallback_cause=cause, passed_over=tuple(v for v, _ in refused))
