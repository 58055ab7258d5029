"""Step time: where boundaries fall and which one a forecast starts from. The forecast job, the retrain job
and the scheduler all read time through these functions, so they agree on every origin.

Boundaries are multiples of the step since the Unix epoch, in UTC, whatever the start time. A forecast made
at ``now`` has its origin at the last boundary at or before ``now`` (its input ends there), and its step h
forecasts ``origin + h * step``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

__all__ = ["align", "first_cycle", "origin"]


def align(moment: datetime, step: timedelta) -> datetime:
    """The last step boundary at or before ``moment``."""
    s = step.total_seconds()
    return datetime.fromtimestamp(math.floor(moment.timestamp() / s) * s, tz=UTC)


def origin(now: datetime, step: timedelta) -> datetime:
    """The origin of a forecast made at ``now``: the last boundary at or before it, whose step is complete."""
    return align(now, step)


def first_cycle(now: datetime, interval: timedelta, settle: timedelta) -> datetime:
    """The first scheduled cycle after ``now``: ``settle`` after a boundary of ``interval``, so that the scrapes
    of the boundary have landed before it is read."""
    first = align(now, interval) + settle
    return first if first > now else first + interval
