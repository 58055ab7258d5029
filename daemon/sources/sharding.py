"""Sharding series across replicas: a stable hash of each label set picks the one replica that forecasts it.

The hash is sha256 of a canonical encoding of the sorted label set, so every replica, on every host and Python
version, agrees on the owner (Python's ``hash()`` of a string is salted per process and would not).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from promcast.daemon.settings import Settings
    from promcast.daemon.types import SeriesKey

__all__ = ["Shard", "shard_for", "shard_of"]

V = TypeVar("V")

# A StatefulSet names its pods <statefulset>-<ordinal>; the ordinal is the digits after the last dash.


def shard_of(key: SeriesKey, count: int) -> int:
    """The shard, 0 <= shard < count, that owns the series with label set ``key``."""
    canonical = json.dumps(sorted(key), separators=(",", ":"), ensure_ascii=False).encode()
    return int.from_bytes(hashlib.sha256(canonical).digest()[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """This replica's part of the series: index ``index`` of ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard_index {self.index} must satisfy 0 <= shard_index < shard_count = {self.count}")

    def owns(self, key: SeriesKey) -> bool:
        return self.count == 1 or shard_of(key, self.count) == self.index

    def select(self, data: Mapping[SeriesKey, V]) -> dict[SeriesKey, V]:
        """The entries of ``data`` whose series this shard owns; all of them when there is one shard."""
        if self.count == 1:
            return dict(data)
        return {k: v for k, v in data.items() if shard_of(k, self.count) == self.index}


def shard_for(settings: Settings) -> Shard:
    """This replica's shard, from the resolved ``shard_index`` and ``shard_count`` settings."""
    return Shard(settings.shard_index or 0, settings.shard_count)
