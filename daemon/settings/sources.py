"""The settings of each source of samples: Prometheus, the embedded demo, and a recorded CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from promcast.daemon.settings.base import Strict
from promcast.forecaster import DEFAULT_HORIZON


class PrometheusSettings(Strict):
    url: AnyHttpUrl = Field(AnyHttpUrl("http://127.0.0.1:9090"), description="base URL of the Prometheus HTTP API")
    bearer_token: SecretStr | None = Field(None, description="token sent as an Authorization: Bearer header")
    username: str | None = Field(None, description="user name for HTTP basic authentication")
    password: SecretStr | None = Field(None, description="password for HTTP basic authentication; needs username")
    verify_tls: bool = Field(True, description="verify the server's TLS certificate")
    ca_file: Path | None = Field(None, description="CA bundle that verifies the server's certificate")
    timeout_seconds: float = Field(10.0, gt=0, description="timeout of one HTTP request")
    retries: int = Field(2, ge=0, le=10, description="retries of a request that failed to connect or got a 5xx")
    backoff_seconds: float = Field(0.5, ge=0, description="backoff factor: the waits between retries double from it")
    max_points_per_request: int = Field(
        11_000, ge=2, le=11_000, description="points per series in one request; longer reads are split"
    )

    @model_validator(mode="after")
    def _auth(self) -> PrometheusSettings:
        if self.password is not None and not self.username:
            raise ValueError("password is set but username is not")
        if self.bearer_token is not None and self.username:
            raise ValueError("set either bearer_token or username/password, not both")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file {self.ca_file} is not a readable file")
        return self


class DemoSettings(Strict):
    workload: Literal["diurnal", "bursty", "shift"] = Field(
        "diurnal", description="shape of the load; shift: drained 30 min in, back at 1.5x after 8 h"
    )
    series: int = Field(1, ge=1, le=10_000, description="number of synthetic series")
    speed: float = Field(1.0, gt=0, le=100_000, description="simulated seconds per real second")
    step_seconds: float = Field(60.0, ge=1, le=86_400, description="the demo target's step")
    horizon: int = Field(DEFAULT_HORIZON, ge=1, le=10_000, description="the demo target's horizon")
    first_model: Literal["pretrained", "train"] = Field(
        "pretrained", description="the demo target's first_model: the pretrained model at once, or train first"
    )
    seed: int = Field(0, description="seed of the synthetic workload")


class CsvSettings(Strict):
    """The ``csv`` source: one recorded series replayed on a clock that starts at ``start`` of the file."""

    path: Path | None = Field(None, description="a timestamp,value CSV (the columns promcast predict reads)")
    value_column: str | None = Field(None, description="the value column, where the file has several")
    start: float = Field(0.8, gt=0, lt=1, description="share of the file before the replay's first now")
    speed: float = Field(1.0, gt=0, le=100_000, description="simulated seconds per real second")

    @field_validator("path")
    @classmethod
    def _path(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"{v} is not a readable file")
        return v


class VictoriaMetricsSettings(Strict):
    """The ``victoriametrics`` source: VictoriaMetrics behind the connection of ``prometheus``, with its read delay.

    For a query step under ``max_step_for_points_adjustment_seconds``, VictoriaMetrics answers the points of the
    last ``latency_offset_seconds`` with the value of the point before: those points are not read."""

    latency_offset_seconds: float = Field(
        30.0, ge=0, description="its -search.latencyOffset: the recent span it answers with older values"
    )
    max_step_for_points_adjustment_seconds: float = Field(
        60.0, ge=0, description="its -search.maxStepForPointsAdjustment: steps below this have that span withheld"
    )
