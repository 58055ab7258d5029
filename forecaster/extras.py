"""Whether this install can train: torch is the ``train`` extra (``pip install 'promcast[train]'``).

Serving never needs torch: the NumPy runtime serves every model that has a NumPy forward, and the pretrained model
(``forecaster.load_pretrained``) forecasts a target before it has a model of its own. Training needs torch; without
it, training stops with ``TrainingUnavailable``, whose message names the extra. Nothing here imports torch.
"""

from __future__ import annotations

import importlib.util

__all__ = ["TRAIN_EXTRA", "TrainingUnavailable", "missing_torch", "require_torch", "torch_available"]

TRAIN_EXTRA = "promcast[train]"


class TrainingUnavailable(RuntimeError):
    """Training was asked for in an install without torch."""


def torch_available() -> bool:
    """True when ``import torch`` would find torch; looks it up without importing it (180 MB resident)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a finder that refuses torch, or a half-removed one
        return False


def missing_torch(what: str) -> str:
    """The message for ``what`` asked of an install without torch: it names the extra that brings torch."""
    return (
        f"{what} needs torch, which this install lacks: install the training extra, "
        f"pip install '{TRAIN_EXTRA}' (README: 'Serving without torch'); serving needs no torch"
    )


def require_torch(what: str) -> None:
    """Raise TrainingUnavailable (``missing_torch(what)``) unless torch is there."""
    if not torch_available():
        raise TrainingUnavailable(missing_torch(what))
