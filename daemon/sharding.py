"""Sharding series across replicas: a stable hash of each label set picks the one replica that forecasts it.

The hash is sha256 of a canonical encoding of the sorted label set, so every replica, on every host and Python
version, agrees on the owner (Python's ``hash()`` of a string is salted per process and would not).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .types import SeriesKey

__all__ = ["Shard", "ordinal_of", "resolve_index", "shard_of"]

V = TypeVar("V")

# A StatefulSet names its pods <statefulset>-<ordinal>; the ordinal is the digits after the last dash.
_ORDINAL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?-(?P<ordinal>0|[1-9][0-9]*)$")


def shard_of(key: SeriesKey, count: int) -> int:
    """The shard, 0 <= shard < count, that owns the series with label set ``key``."""
    canonical = json.dumps(sorted(key), separators=(",", ":"), ensure_ascii=False).encode()
    return int.from_bytes(hashlib.sha256(canonical).digest()[:8], "big") % count


def ordinal_of(pod_name: str | None) -> int | None:
    """The ordinal of a StatefulSet pod name (``promcast-2`` -> 2); None when the name has no such suffix."""
    if not pod_name:
        return None
    m = _ORDINAL.match(pod_name.strip().lower())
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


@dataclass(frozen=True)
class Shard:
    """This replica's part of the series: index ``index`` of ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        resolve_index(self.index, self.count, None)

    def owns(self, key: SeriesKey) -> bool:
        return self.count == 1 or shard_of(key, self.count) == self.index

    def select(self, data: Mapping[SeriesKey, V]) -> dict[SeriesKey, V]:
        """The entries of ``data`` whose series this shard owns; all of them when there is one shard."""
        if self.count == 1:
            return dict(data)
        return {k: v for k, v in data.items() if shard_of(k, self.count) == self.index}
