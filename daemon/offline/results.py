"""What both offline replays report of the model they fitted (forecaster.offline.fit_first_part's account)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FittedModel"]


@dataclass(frozen=True)
class FittedModel:
    """The model fitted before the replay: its name, window, input length and the points it was fitted on."""

    name: str
    window: int
    input_length: int
    fit_points: int
