"""The settings of the forecast writer: where each cycle's forecasts are pushed, stamped at their future times."""

from __future__ import annotations

import re

from pydantic import AnyHttpUrl, Field, field_validator

from promcast.daemon.settings.base import Strict

_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
AHEAD_SECONDS = 2 * 86400.0  # VictoriaMetrics drops, silently, a sample stamped further ahead than this


def push_problem(name: str, horizon: int, step_seconds: float) -> str | None:
    """Why a target's forecasts cannot be pushed, or None."""
    if horizon >= step_seconds * 1000:  # step h is stamped h ms early: that must stay within its step
        return f"target {name}'s horizon {horizon} must be under its step in milliseconds"
    if horizon * step_seconds > AHEAD_SECONDS:
        ahead = horizon * step_seconds
        return f"target {name} forecasts {ahead:g} s ahead; VictoriaMetrics drops samples over {AHEAD_SECONDS:g} s"
    return None


class PushSettings(Strict):
    url: AnyHttpUrl | None = Field(
        None,
        description="import endpoint that stores samples ahead of now, such as VictoriaMetrics' "
        "http://HOST:8428/api/v1/import/prometheus; unset: no push",
    )
    metric: str = Field("promcast_forecast_ahead", description="metric name of the pushed forecasts")
    bands: bool = Field(True, description="push the interval bounds too, labelled bound and level")
    timeout_seconds: float = Field(
        2.0, gt=0, le=60, description="how long one push waits to connect, and then for the answer"
    )

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if not _METRIC.match(v):
            raise ValueError(f"{v!r} is not a metric name")
        return v
