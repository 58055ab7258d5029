"""Types every part of the daemon shares, free of any I/O: a series' identity, the source's one error, and the live
quality that the cycle measures and /metrics exports."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QualitySnapshot", "SeriesKey", "SourceUnavailable"]

SeriesKey = tuple[tuple[str, str], ...]  # sorted (label, value) pairs that identify one series


class SourceUnavailable(Exception):
    """The metric source could not answer: down, too slow, refused, or answered garbage."""


class QueryRejected(SourceUnavailable):
    """The source answered that the query itself is wrong (a PromQL syntax or execution error), not that it is
    down: asking again does not help. ``syntax``: the source says it cannot parse the query, a setting to fix."""

    def __init__(self, message: str, syntax: bool = True) -> None:
        super().__init__(message)
        self.syntax = syntax


@dataclass(frozen=True)
class QualitySnapshot:
    mae: list[float | None]  # per horizon step 1..H; None until a forecast of that step was scored
    naive_mae: list[float | None]
    coverage: dict[float, float | None]  # nominal level -> share of actual values inside the band
    scored: int  # forecasts of step 1 scored so far (within the window)

    @property
    def skill(self) -> float | None:
        """1 - MAE_model / MAE_naive over every step scored; positive when the model beats naive."""
        pairs = [(m, n) for m, n in zip(self.mae, self.naive_mae, strict=True) if m is not None and n]
        if not pairs:
            return None
        return 1.0 - sum(m for m, _ in pairs) / sum(n for _, n in pairs)
