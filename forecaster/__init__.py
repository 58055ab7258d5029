"""promcast's forecasting core: data pipeline, models, training, and the frozen Forecaster.

It knows nothing of Prometheus or the daemon, and reads no environment variables. Importing the package
does not import torch: ``Forecaster``, ``MODELS`` and ``TrainConfig`` are loaded on first use, so that a
process serving through ``forecaster.numpy_runtime`` never pays for torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from .artifact import ArtifactError
from .names import DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_WINDOW, MODEL_NAMES, PRETRAINED_MODEL
from .predictor import NotFittedError, Predictor

if TYPE_CHECKING:
    from .forecaster import Forecaster
    from .models import MODELS
    from .train import TrainConfig

__all__ = [
    "DEFAULT_HORIZON",
    "DEFAULT_MODEL",
    "DEFAULT_WINDOW",
    "MODELS",
    "MODEL_NAMES",
    "PRETRAINED",
    "PRETRAINED_MODEL",
    "ArtifactError",
    "Forecaster",
    "NotFittedError",
    "Predictor",
    "TrainConfig",
    "__version__",
    "load_pretrained",
    "pretrained_meta",
]

_LAZY = {"Forecaster": ".forecaster", "MODELS": ".models", "TrainConfig": ".train"}
PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "artifact"  # forecaster/pretrained/MODEL_CARD.md


def load_pretrained() -> Predictor:
    """The pretrained global model that ships in the package, on the NumPy runtime (no torch): a fitted predictor
    of the next 12 steps from the last ``input_length`` points of a series of any step, level or unit."""
    from .numpy_runtime import load_frozen

    return load_frozen(PRETRAINED)


def pretrained_meta() -> dict[str, Any]:
    """The pretrained model's meta.json (window, horizon, input_length...), checked and migrated as every artifact's
    is, without loading its weights."""
    from .artifact import read_meta

    return read_meta(PRETRAINED)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
