"""What every settings class shares: strict models, the one settings error, and the values resolved from them."""

from __future__ import annotations

import re

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
)

# The exporter range 9100-9999 of Prometheus's default port allocations is full; 10190 lies outside it.
DEFAULT_PORT = 10190
ORDINAL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?-(?P<ordinal>0|[1-9][0-9]*)$")
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_:.-]*$")


def ordinal_of(pod_name: str | None) -> int | None:
    """The ordinal of a StatefulSet pod name (``promcast-2`` -> 2); None when the name has no such suffix."""
    if not pod_name:
        return None
    m = ORDINAL.match(pod_name.strip().lower())
    return int(m.group("ordinal")) if m else None


def resolve_index(index: int | None, count: int, pod_name: str | None) -> int:
    """The shard index: ``index`` when set; otherwise 0 for one shard, or the pod name's StatefulSet ordinal.

    Raises ValueError when the index is out of range, or when several shards exist and none can be found:
    two replicas silently taking shard 0 would forecast the same series twice and leave others unforecast.
    """
    if count < 1:
        raise ValueError(f"shard_count must be at least 1, got {count}")
    if index is None:
        if count == 1:
            return 0
        index = ordinal_of(pod_name)
        if index is None:
            raise ValueError(
                f"shard_count is {count} but shard_index is unset and the host name {pod_name!r} does not end "
                "in -<ordinal> (a StatefulSet pod); set shard_index (PROMCAST_SHARD_INDEX)"
            )
        source = f" (from the host name {pod_name!r})"
    else:
        source = ""
    if not 0 <= index < count:
        raise ValueError(f"shard_index {index}{source} must satisfy 0 <= shard_index < shard_count = {count}")
    return index


class ConfigError(Exception):
    """Settings are invalid; the message names each bad setting. The CLI exits with code 2."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
