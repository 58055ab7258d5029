"""The model each target serves: loaded and validated aside, then swapped in as one reference under a lock."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecaster import ArtifactError, Predictor
from forecaster.frozen import load_frozen

from .settings import TargetSettings
from .store import ModelStore, StoreError

__all__ = ["ModelHolder", "ServedModel", "validate_for_target"]


@dataclass(frozen=True)
class ServedModel:
    forecaster: Predictor
    version: str
    path: Path

    @property
    def trained_at(self) -> str:
        return str(self.forecaster.meta.get("trained_at", ""))


def validate_for_target(f: Predictor, target: TargetSettings, probe: np.ndarray | None = None) -> None:
    """Raise ArtifactError unless ``f`` fits the target (window, horizon, step) and predicts finite values."""
    if f.window != target.window or f.horizon != 12:
        raise ArtifactError(f"model has window={f.window} horizon={f.horizon}; target needs window={target.window}")
    if f.step is not None and abs(f.step.total_seconds() - target.step_seconds) > 1e-6:
        raise ArtifactError(f"model step {f.step.total_seconds():g}s differs from target step {target.step_seconds:g}s")
    window = probe if probe is not None else np.linspace(0.0, 1.0, f.window)
    try:
        f.predict(window[None, -f.window :])  # raises rather than return a non-finite forecast
    except ValueError as exc:
        raise ArtifactError(f"model fails its smoke prediction: {exc}") from exc


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

    def load(self, version: str | None = None, probe: np.ndarray | None = None) -> ServedModel:
        """Load ``version`` (default: current) from the store and validate it; does not swap it in."""
        version = version or self.store.current_version()
        if version is None:
            raise StoreError(f"{self.store.dir}: no current model")
        path = self.store.versions_dir / version
        f = load_frozen(path)  # through NumPy for the default model: serving never imports torch for it
        validate_for_target(f, self.target, probe)
        return ServedModel(f, version, path)
