"""Settings: one pydantic-settings class (env prefix PROMCAST_, optional YAML/TOML file), built once in main().

``base`` holds what every class shares, ``sources`` each source's settings, ``target`` a target's, and ``daemon``
the daemon's own and the loader.
"""

from promcast.daemon.settings.base import DEFAULT_PORT, ConfigError, cron_trigger, ordinal_of, resolve_index
from promcast.daemon.settings.daemon import RetrainSettings, Settings, load_settings
from promcast.daemon.settings.sources import CsvSettings, DemoSettings, PrometheusSettings
from promcast.daemon.settings.target import BurstSettings, DriftSettings, GuardSettings, TargetSettings

__all__ = [
    "DEFAULT_PORT",
    "BurstSettings",
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
    "ordinal_of",
    "resolve_index",
]
