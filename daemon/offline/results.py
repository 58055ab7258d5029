"""What both offline replays report of their model: fitted here (forecaster.offline.fit_first_part's account) or
loaded whole (daemon.offline.replay_model)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FittedModel"]


@dataclass(frozen=True)
class FittedModel:
    """The replay's model: its name, window, input length and the points it was fitted on (0: loaded, not fitted)."""

    name: str
    window: int
    input_length: int
    fit_points: int
    artifact: str | None = field(default=None, kw_only=True)  # the folder of a model loaded whole; None: fitted

    @property
    def fitted(self) -> bool:
        return self.artifact is None
