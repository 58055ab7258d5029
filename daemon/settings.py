"""Settings: one pydantic-settings class (env prefix PROMCAST_, optional YAML/TOML file), built once in main()."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from forecaster import DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_WINDOW, MODEL_NAMES, PRETRAINED_MODEL, pretrained_meta
from forecaster.gate import default_gate, input_length

from .autoscale import Scaling
from .sharding import Shard, resolve_index

__all__ = [
    "DEFAULT_PORT",
    "ConfigError",
    "CsvSettings",
    "DemoSettings",
    "DriftSettings",
    "GuardSettings",
    "PrometheusSettings",
    "RetrainSettings",
    "Settings",
    "TargetSettings",
    "cron_trigger",
    "load_settings",
]

# The exporter range 9100-9999 of Prometheus's default port allocations is full; 10190 lies outside it.
DEFAULT_PORT = 10190
_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_:.-]*$")


class ConfigError(Exception):
    """Settings are invalid; the message names each bad setting. The CLI exits with code 2."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrometheusSettings(_Strict):
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


class GuardSettings(_Strict):
    """Per series: publish naive (or seasonal naive) while the model has been losing to it (daemon.guard)."""

    enabled: bool = True
    window: int = Field(288, ge=2, description="scorings the per-series rolling MAE spans; none decides before them")
    margin: float = Field(
        0.25, ge=0, le=10, description="relative MAE excess over the best fallback that leaves the model"
    )
    patience: int = Field(36, ge=1, description="consecutive scorings that must agree before a switch, either way")


class BurstSettings(_Strict):
    """Per series: flag actual values far outside the forecasts made for them (forecaster.bursts)."""

    enabled: bool = True
    threshold: float = Field(
        1.0, ge=0, description="band widths outside the widest interval that make a step a burst candidate"
    )
    persistence: int = Field(2, ge=1, description="consecutive candidate steps that make a burst")
    spike: float | None = Field(
        10.0, ge=0, description="band widths at which a single step is a burst at once; null: never"
    )

    @model_validator(mode="after")
    def _spike(self) -> BurstSettings:
        if self.spike is not None and self.spike < self.threshold:
            raise ValueError(f"bursts.spike {self.spike:g} must be at least bursts.threshold {self.threshold:g}")
        return self


class DriftSettings(_Strict):
    """Retrain when the target's live skill stays low (opt in: each retrain is a training run in a child)."""

    enabled: bool = False
    skill_below: float = Field(0.0, ge=-10, le=1, description="promcast_forecast_skill_ratio under this is drift")
    cycles: int = Field(60, ge=1, description="consecutive cycles the skill must stay under skill_below")
    cooldown_seconds: float = Field(21_600.0, gt=0, description="the least time between two drift retrains")


class TargetSettings(_Strict):
    name: str
    query: str = Field(min_length=1)
    step_seconds: float = Field(60.0, gt=0)
    interval_seconds: float | None = Field(None, gt=0, description="how often to forecast; default: every step")
    window: int = Field(DEFAULT_WINDOW, gt=0)
    horizon: int = Field(
        DEFAULT_HORIZON,
        ge=1,
        le=10_000,
        description="steps forecast ahead (h = 1..horizon); reach past your pods' start-up time to scale ahead of it",
    )
    history: timedelta = Field(timedelta(days=7), description="how far back to read when training")
    drop_labels: list[str] = Field(default_factory=list, description="labels that churn, e.g. pod")
    model: str = Field(
        DEFAULT_MODEL,
        description=f"the network to train for the target, or {PRETRAINED_MODEL!r}: serve the pretrained model that "
        "ships in the package, for good, never training",
    )
    first_model: Literal["pretrained", "train"] = Field(
        "pretrained",
        description="with no model in the store: serve the pretrained model from the first cycle and train the "
        "target's own in the background (the retrain gate promotes it only if it beats the pretrained one), or "
        "train first and forecast after; a target whose window or horizon the pretrained model lacks trains first",
    )
    own_model_retry_seconds: float = Field(
        21_600.0,
        gt=0,
        description="while the pretrained model serves a target that trains its own, how often to try again "
        "(on the source's clock) after a training the gate did not promote or that failed",
    )
    hparams: dict[str, Any] = Field(default_factory=dict)
    scaler: Literal["standard", "minmax"] = Field("standard", description="global scaling fitted on the history")
    torch_fallback: bool = Field(
        False, description="serve through torch (about 180 MB) an artifact the NumPy runtime refuses; logged"
    )
    epochs: int | None = Field(None, gt=0, description="training epochs; default: the model's own")
    max_gap: int = Field(5, ge=0, description="steps a series may lag, and the longest gap filled as routine")
    gap_interval_factor: float = Field(
        1.5, ge=1, description="interval widening for a series whose window bridges a gap longer than max_gap"
    )
    settle_seconds: float | None = Field(
        None,
        ge=0,
        description="seconds after each boundary before the cycle reads it, so that its scrapes have landed; "
        "default 5, or a tenth of the interval where that is shorter",
    )
    levels: list[float] = Field(default_factory=lambda: [0.8, 0.95], description="prediction interval levels")
    clip_negative: bool = Field(
        True, description="clip forecasts and bounds at 0 for a series whose input window is never negative"
    )
    quality_window: int = Field(288, ge=1, description="scored forecasts per step in the rolling quality")
    aci_gamma: float = Field(0.005, ge=0, le=0.1, description="step size of the online interval adaptation")
    capacity_per_replica: float | None = Field(
        None, gt=0, description="load one replica serves; set it to publish promcast_recommended_replicas"
    )
    target_utilization: float = Field(
        1.0, gt=0, le=1, description="share of capacity_per_replica a replica is planned to carry (the HPA's target)"
    )
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(100, ge=1)
    replicas_level: float | None = Field(
        None, description="the interval level whose upper bound the replicas cover; one of levels; default: the widest"
    )
    startup_steps: int | None = Field(
        None,
        ge=0,
        description="steps a new replica takes to serve: the replicas cover the forecast that far ahead; "
        "default: the whole horizon",
    )
    retrain_cron: str | None = Field(
        None, description="retrain in the daemon on this crontab (5 fields, or 6 with seconds first); UTC"
    )
    guard: GuardSettings = GuardSettings()
    bursts: BurstSettings = BurstSettings()
    drift_retrain: DriftSettings = DriftSettings()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"target name {v!r} must match {_NAME.pattern}")
        return v

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not 0.5 <= x < 1.0]
        if bad:
            raise ValueError(f"interval levels must lie in [0.5, 1), got {bad}")
        return sorted(set(v))

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v not in MODEL_NAMES and v != PRETRAINED_MODEL:
            raise ValueError(f"unknown model {v!r}; choose one of {sorted([*MODEL_NAMES, PRETRAINED_MODEL])}")
        return v

    @field_validator("retrain_cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            cron_trigger(v)
        return v

    @property
    def input_length(self) -> int:
        """Steps one forecast reads: the model's window, and the recent past its gate scores (forecaster.gate)."""
        if self.model == PRETRAINED_MODEL:
            return int(pretrained_meta()["input_length"])
        return input_length(self.window, default_gate(self.model))

    @model_validator(mode="after")
    def _pretrained(self) -> TargetSettings:
        if self.model == PRETRAINED_MODEL:
            meta = pretrained_meta()
            if (self.window, self.horizon) != (meta["window"], meta["horizon"]):
                raise ValueError(
                    f"model {PRETRAINED_MODEL!r} reads window={meta['window']} and forecasts horizon={meta['horizon']};"
                    f" this target sets window={self.window} and horizon={self.horizon}"
                )
        return self

    @model_validator(mode="after")
    def _history(self) -> TargetSettings:
        steps = self.history.total_seconds() / self.step_seconds
        if steps < self.input_length + self.horizon:
            raise ValueError(
                f"history {self.history} holds {steps:.0f} steps; training needs at least input_length + horizon = "
                f"{self.input_length} + {self.horizon} (window {self.window}, the gate's recent past, the horizon)"
            )
        if self.settle >= self.interval:
            raise ValueError(f"settle_seconds {self.settle:g} must be shorter than the interval {self.interval:g}s")
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} exceeds max_replicas {self.max_replicas}")
        if self.replicas_level is not None and self.replicas_level not in self.levels:
            raise ValueError(f"replicas_level {self.replicas_level:g} must be one of levels {self.levels}")
        if self.startup_steps is not None and self.startup_steps >= self.horizon:
            raise ValueError(f"startup_steps {self.startup_steps} must be shorter than the horizon {self.horizon}")
        return self

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.step_seconds)

    @property
    def scaling(self) -> Scaling | None:
        """The replicas policy's settings (daemon.autoscale), or None without capacity_per_replica."""
        if self.capacity_per_replica is None:
            return None
        startup = self.horizon - 1 if self.startup_steps is None else self.startup_steps
        return Scaling(
            self.capacity_per_replica, self.target_utilization, self.min_replicas, self.max_replicas, startup
        )

    @property
    def day_steps(self) -> int | None:
        """Steps in a day, where the step divides a day and a day fits the input: seasonal naive's period."""
        steps = 86_400 / self.step_seconds
        return int(steps) if steps.is_integer() and steps <= self.input_length else None

    @property
    def interval(self) -> float:
        return self.interval_seconds or self.step_seconds

    @property
    def settle(self) -> float:
        return self.settle_seconds if self.settle_seconds is not None else min(5.0, self.interval / 10)


def cron_trigger(expr: str) -> CronTrigger:
    """A UTC CronTrigger from a crontab line; a sixth, leading field gives the seconds."""
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"cron {expr!r} needs 5 fields (minute hour day month weekday) or 6 (seconds first)")
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone="UTC"
        )
    except ValueError as exc:
        raise ValueError(f"cron {expr!r}: {exc}") from exc


class RetrainSettings(_Strict):
    margin: float = Field(
        0.02, ge=0, lt=1, description="relative holdout-MAE improvement a challenger needs over the champion"
    )
    holdout_ratio: float = Field(
        0.15, gt=0, lt=0.5, description="the most recent share of history held out of training and scored on"
    )
    max_holdout_windows: int = Field(500, ge=1, description="holdout windows scored per series, evenly spaced")
    keep: int = Field(5, ge=1, description="versions kept in the store; older ones are pruned")
    timeout_seconds: float = Field(3600.0, gt=0, description="a scheduled retrain running longer is stopped")


class DemoSettings(_Strict):
    workload: Literal["diurnal", "bursty", "shift"] = "diurnal"
    series: int = Field(1, ge=1, le=10_000)
    speed: float = Field(1.0, gt=0, le=100_000, description="simulated seconds per real second")
    step_seconds: float = Field(60.0, ge=1, le=86_400, description="the demo target's step")
    horizon: int = Field(DEFAULT_HORIZON, ge=1, le=10_000, description="the demo target's horizon")
    first_model: Literal["pretrained", "train"] = Field(
        "pretrained", description="the demo target's first_model: the pretrained model at once, or train first"
    )
    seed: int = 0


class CsvSettings(_Strict):
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMCAST_", env_nested_delimiter="__", extra="forbid")

    source: Literal["prometheus", "demo", "csv"] = Field(
        "prometheus", description="where samples come from: one of daemon.sources.SOURCES"
    )
    prometheus: PrometheusSettings = PrometheusSettings()
    targets: list[TargetSettings] = Field(default_factory=list)
    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    model_dir: Path = Path("models")
    ready_max_age_steps: float = Field(
        3.0, gt=0, description="a forecast older than this many cycles (steps, unless interval_seconds) is stale"
    )
    torch_threads: int = Field(
        1, ge=1, le=64, description="CPU threads for inference (NumPy BLAS; torch where a model needs it)"
    )
    model_poll_seconds: float = Field(30.0, gt=0, description="how often to look for a new current model")
    train_timeout_seconds: float = Field(
        1800.0, gt=0, description="a first-start training (history read and fit) running longer is stopped"
    )
    health_max_idle_cycles: float = Field(
        3.0, ge=1, description="/healthz fails when a target has started no cycle for this many intervals"
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    demo: DemoSettings = DemoSettings()
    csv: CsvSettings = CsvSettings()
    retrain: RetrainSettings = RetrainSettings()
    shard_count: int = Field(1, ge=1, description="replicas that split the series between them")
    shard_index: int | None = Field(
        None, ge=0, description="this replica's shard; default: 0 with one shard, else HOSTNAME's StatefulSet ordinal"
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen {v!r} must be HOST:PORT with a port from 0 to 65535")
        return v

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        names = [t.name for t in self.targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"target names must be unique; repeated: {dupes}")
        return self

    @model_validator(mode="after")
    def _csv(self) -> Settings:
        if self.source == "csv" and self.csv.path is None:
            raise ValueError("source csv needs csv.path (PROMCAST_CSV__PATH)")
        return self

    @model_validator(mode="after")
    def _shard(self) -> Settings:
        # Kubernetes sets HOSTNAME to the pod name; a StatefulSet's ends in -<ordinal>.
        self.shard_index = resolve_index(self.shard_index, self.shard_count, os.environ.get("HOSTNAME"))
        return self

    @property
    def shard(self) -> Shard:
        return Shard(self.shard_index or 0, self.shard_count)

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: command-line flags (init) > environment > config file.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE.get("path")
        if config_file is not None:
            if config_file.suffix in (".yaml", ".yml"):
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
            else:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


# The config file path for the one Settings() call made by load_settings(); never set at import time.
_CONFIG_FILE: dict[str, Path | None] = {"path": None}


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"  {where}: {err['msg']}")
    return "invalid settings:\n" + "\n".join(lines)


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from flags (``overrides``), PROMCAST_* variables and an optional YAML/TOML file."""
    path = Path(config) if config is not None else None
    if path is not None:
        if path.suffix not in (".yaml", ".yml", ".toml"):
            raise ConfigError(f"config file {path}: use a .yaml, .yml or .toml file")
        try:
            path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read it: {exc.strerror or exc}") from exc
    _CONFIG_FILE["path"] = path
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    except Exception as exc:  # a malformed YAML/TOML file surfaces here with its parser's message
        raise ConfigError(f"config file {path}: {exc}") from exc
    finally:
        _CONFIG_FILE["path"] = None
