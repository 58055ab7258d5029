"""Model names and production defaults, importable without torch.

The daemon validates its settings against these names before anything imports a model class; a test
keeps ``MODEL_NAMES`` equal to the registry in ``forecaster.models``.
"""

from __future__ import annotations

__all__ = ["BASELINES", "DEFAULT_HORIZON", "DEFAULT_MODEL", "DEFAULT_WINDOW", "MODEL_NAMES"]

MODEL_NAMES = ("naive", "seasonal_naive", "ar", "nlinear", "mlp", "lstm", "gru", "transformer")
BASELINES = ("naive", "seasonal_naive", "ar")  # measured beside every model in an evaluation

# The production default, chosen from the measurements in week3_notes.md.
DEFAULT_MODEL = "mlp"
DEFAULT_WINDOW = 288
DEFAULT_HORIZON = 12  # steps forecast; a target setting (daemon.settings.TargetSettings.horizon)
