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

from daemon.settings.base import Strict
from forecaster import DEFAULT_HORIZON


class PrometheusSettings(Strict):
    url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:9090")
    bearer_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    timeout_seconds: float = Field(10.0, gt=0)
    retries: int = Field(2, ge=0, le=10)
    backoff_seconds: float = Field(0.5, ge=0)
    max_points_per_request: int = Field(11_000, ge=2, le=11_000)

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
    workload: Literal["diurnal", "bursty", "shift"] = "diurnal"
    series: int = Field(1, ge=1, le=10_000)
    speed: float = Field(1.0, gt=0, le=100_000, description="simulated seconds per real second")
    step_seconds: float = Field(60.0, ge=1, le=86_400, description="the demo target's step")
    horizon: int = Field(DEFAULT_HORIZON, ge=1, le=10_000, description="the demo target's horizon")
    first_model: Literal["pretrained", "train"] = Field(
        "pretrained", description="the demo target's first_model: the pretrained model at once, or train first"
    )
    seed: int = 0


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
