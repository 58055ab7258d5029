"""Production defaults, importable without torch; the model names are the table's (``forecaster.catalog``)."""

from __future__ import annotations

from .catalog import BASELINES, MODEL_NAMES

__all__ = ["BASELINES", "DEFAULT_HORIZON", "DEFAULT_MODEL", "DEFAULT_WINDOW", "MODEL_NAMES", "PRETRAINED_MODEL"]

# The production default, chosen by the benchmark over the 17 shared traces (docs/benchmarks.md).
DEFAULT_MODEL = "mlp"
DEFAULT_WINDOW = 288
DEFAULT_HORIZON = 12  # steps forecast; a target setting (daemon.settings.TargetSettings.horizon)
# What a target's ``model`` names to serve the pretrained model that ships in the package (forecaster/pretrained),
# for good: never trained on the target. It is no network of the table: the pretrained model is an ``mlp``.
PRETRAINED_MODEL = "pretrained"
