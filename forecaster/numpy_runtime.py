"""Serving without torch: NumPy forward passes for the models that are a few array operations.

``ArrayForecaster`` loads the same artifact as ``Forecaster.load`` (safetensors weights, meta.json) and
predicts through NumPy. The default model (``mlp``), ``nlinear`` and the baselines have such a forward;
the recurrent and attention models do not, and ``load_frozen`` loads those through torch. An artifact that
the NumPy runtime refuses goes to torch only when the caller asks (``torch_fallback``), never silently. A
process that only serves the default model never imports torch (docs/benchmarks.md measures what that saves).
``tests/test_numpy_runtime.py`` holds each forward to the torch model's output.

The forwards are ``forecaster.forwards``'; ``forecaster.catalog`` says which model has one, and which
hyperparameters it reads.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .artifact import ArtifactError, read_artifact
from .catalog import CATALOG
from .forwards import Forward, gelu
from .predictor import Predictor, Restored

__all__ = ["ArrayForecaster", "gelu", "load_frozen"]


class ArrayForecaster(Predictor):
    """A frozen forecaster that predicts through NumPy; load it with ``ArrayForecaster.load``."""

    runtime = "numpy"
    # 128 rows a pass: a block's arrays (the gate's 12 recent windows of each row, the hidden layer) stay near a
    # core's cache instead of streaming through memory once per array operation; far smaller blocks pay each call's
    # overhead. ``python -m benchmarks.pretrained_zero_shot --blocks 16 32 64 128 256 1000`` times the sizes.
    block = 128

    def __init__(self, restored: Restored, forward: Forward, scout: Forward | None = None) -> None:
        self.model_name, self.window, self.horizon = restored.model, restored.window, restored.horizon
        self.step, self.max_gap = restored.step, restored.max_gap
        self._scaler, self._calibration = restored.scaler, restored.calibration
        self._forward, self.meta, self.gate, self.serves = forward, restored.meta, restored.gate, restored.serves
        self._scout = scout or forward

    def _predict_scaled(self, z: np.ndarray) -> np.ndarray:
        return self._forward(np.ascontiguousarray(z, dtype=np.float32)).astype(np.float64)

    def _scout_scaled(self, z: np.ndarray) -> np.ndarray:
        return self._scout(np.ascontiguousarray(z, dtype=np.float32)).astype(np.float64)

    @classmethod
    def restore(cls, r: Restored, arrays: dict[str, np.ndarray]) -> ArrayForecaster:
        """An ArrayForecaster from an artifact already read: its checked meta.json and its weights."""
        spec = CATALOG.get(r.model)
        if spec is None or spec.numpy is None:
            raise ArtifactError(f"{r.path}: model {r.model!r} has no NumPy forward; load it with Forecaster.load")
        # The NumPy forward reads these hyperparameters exactly (the migration has filled those added since an
        # artifact was made): an artifact with others or fewer goes to torch, which fills defaults and refuses
        # unknown names.
        if set(r.hparams) != spec.hparam_names:
            raise ArtifactError(
                f"{r.path}: hyperparameters {sorted(r.hparams)}, the NumPy {r.model} reads {sorted(spec.hparam_names)}"
            )
        weights = {k: v.astype(np.float32, copy=False) for k, v in arrays.items()}
        try:
            built = spec.numpy(weights, r.window, r.horizon, r.hparams)
            if weights:
                raise ValueError(f"unexpected weights {sorted(weights)}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{r.path}: meta.json does not describe these weights: {exc}") from exc
        forward, scout = built if isinstance(built, tuple) else (built, None)
        return cls(r, forward, scout)


def load_frozen(
    path: str | Path, *, torch_fallback: bool = False, on_fallback: Callable[[str], None] | None = None
) -> Predictor:
    """The artifact at ``path``, ready to predict: through NumPy where the model has a NumPy forward, else torch.

    An artifact of a model with a NumPy forward that the NumPy runtime refuses (say, one whose hyperparameters
    predate a field) is never handed to torch silently. With ``torch_fallback`` false it is refused: ArtifactError
    with the NumPy runtime's reason. With it true, ``on_fallback`` receives that reason (by default it becomes a
    RuntimeWarning) and ``Forecaster.load`` decides as it always has: it raises ArtifactError for a corrupt
    artifact and serves an older one through torch. The artifact is read and checked once; a corrupt meta.json is
    refused before torch is ever imported."""
    arrays, meta = read_artifact(path)
    r = Restored(path, meta)
    if r.model in CATALOG and CATALOG[r.model].numpy is not None:
        try:
            return ArrayForecaster.restore(r, arrays)
        except ArtifactError as exc:
            if not torch_fallback:
                raise ArtifactError(f"{exc} (the NumPy runtime refuses it; torch_fallback is off)") from exc
            reason = f"{exc}; loading it through torch (torch_fallback is on)"
            if on_fallback is None:
                warnings.warn(reason, RuntimeWarning, stacklevel=2)
            else:
                on_fallback(reason)
    from .forecaster import Forecaster  # imports torch: models without a NumPy forward, or a fallback asked for

    return Forecaster.restore(r, arrays)
