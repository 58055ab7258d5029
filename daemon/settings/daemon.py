"""The daemon's settings: one pydantic-settings class (env prefix PROMCAST_, optional YAML/TOML file), built once
in main()."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
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

from promcast.daemon.settings.base import DEFAULT_PORT, ConfigError, Strict, resolve_index
from promcast.daemon.settings.sinks import PushSettings, push_problem
from promcast.daemon.settings.sources import CsvSettings, DemoSettings, PrometheusSettings, VictoriaMetricsSettings
from promcast.daemon.settings.target import TargetSettings


class RetrainSettings(Strict):
    margin: float = Field(
        0.02, ge=0, lt=1, description="relative holdout-MAE improvement a challenger needs over the champion"
    )
    holdout_ratio: float = Field(
        0.15, gt=0, lt=0.5, description="the most recent share of history held out of training and scored on"
    )
    max_holdout_windows: int = Field(500, ge=1, description="holdout windows scored per series, evenly spaced")
    keep: int = Field(5, ge=1, description="versions kept in the store; older ones are pruned")
    timeout_seconds: float = Field(3600.0, gt=0, description="a scheduled retrain running longer is stopped")


class Settings(BaseSettings):
    # model_dir and model_poll_seconds are settings, not pydantic's: its "model_" namespace stays unprotected.
    model_config = SettingsConfigDict(
        env_prefix="PROMCAST_", env_nested_delimiter="__", extra="forbid", protected_namespaces=("settings_",)
    )

    source: Literal["prometheus", "victoriametrics", "demo", "csv"] = Field(
        "prometheus",
        description="where samples come from: Prometheus, VictoriaMetrics, the built-in demo, or a recorded CSV",
    )
    prometheus: PrometheusSettings = Field(
        PrometheusSettings(),
        description="how to reach the Prometheus HTTP API, for the prometheus and victoriametrics sources",
    )
    victoriametrics: VictoriaMetricsSettings = Field(
        VictoriaMetricsSettings(), description="what the victoriametrics source leaves unread, as VictoriaMetrics does"
    )
    push: PushSettings = Field(PushSettings(), description="the forecast writer: off unless push.url is set")
    targets: list[TargetSettings] = Field(
        default_factory=list, description="the queries to forecast, each with its step and model"
    )
    listen: str = Field(f"0.0.0.0:{DEFAULT_PORT}", description="HOST:PORT of /metrics, /healthz and /readyz")
    web_config_file: Path | None = Field(
        None,
        description="exporter-toolkit web config file: TLS and basic auth on every endpoint, re-read when it "
        "changes; unset: plain HTTP",
    )
    model_dir: Path = Field(Path("models"), description="folder of the model store: one subfolder per target")
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
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="log line format; auto: JSON unless stderr is a terminal"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="the least severe level logged")
    demo: DemoSettings = Field(DemoSettings(), description="the built-in synthetic workload, for the demo source")
    csv: CsvSettings = Field(CsvSettings(), description="a recorded series replayed as live, for the csv source")
    retrain: RetrainSettings = Field(
        RetrainSettings(), description="how a retrain scores its challenger against the serving champion"
    )
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
    def _push(self) -> Settings:
        if self.push.url is not None:
            for t in self.targets:
                if (problem := push_problem(t.name, t.horizon, t.step_seconds)) is not None:
                    raise ValueError(f"push.url: {problem}")
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
