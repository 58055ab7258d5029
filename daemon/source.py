"""Prometheus input: one thin class with an explicit timeout, retries, paging, and one domain error."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import numpy as np
import pandas as pd
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from .settings import PrometheusSettings, TargetSettings

__all__ = [
    "MergeStats",
    "Merges",
    "PrometheusSource",
    "SeriesKey",
    "Source",
    "SourceUnavailable",
    "drop_repeats",
    "group_series",
    "merge_series",
    "page_ranges",
    "stamped_query",
]

SeriesKey = tuple[tuple[str, str], ...]  # sorted (label, value) pairs that identify one series

# A plain selector (a metric name and/or {matchers}): its samples' own timestamps are known to PromQL.
_PLAIN = re.compile(r"^\s*(?:[a-zA-Z_:][a-zA-Z0-9_:]*\s*)?(?:\{[^{}]*\})?\s*$")
_STAMP = "promcast_sample_time"  # marks the timestamp() half of a plain selector's answer


def stamped_query(query: str) -> str | None:
    """For a plain selector, one query that answers its values and, marked by a label, each value's own sample
    time: a range query repeats a series' last sample at every step of Prometheus's 5-minute lookback after it
    stops, and only the sample time tells the repeat from a real sample. None for any other expression."""
    if not _PLAIN.match(query) or not query.strip():
        return None
    return f'({query}) or label_replace(timestamp({query}), "{_STAMP}", "1", "", "")'


def drop_repeats(results: list[dict[str, Any]], step: float) -> list[dict[str, Any]]:
    """The value series of a stamped answer, without the points whose sample is older than their step (the
    lookback's repeats): those become missing points, which the windows fill and count as imputed."""
    stamps: dict[str, list[Any]] = {}
    values = []
    for item in results:
        metric = item.get("metric", {})
        if metric.get(_STAMP) == "1":
            rest = {k: v for k, v in metric.items() if k != _STAMP}
            stamps[repr(sorted(rest.items()))] = item.get("values", [])
        else:
            values.append(item)
    out = []
    for item in values:
        rest = {k: v for k, v in item.get("metric", {}).items() if k != "__name__"}
        got, seen = item.get("values", []), stamps.get(repr(sorted(rest.items())))
        if seen and got:
            at = np.array([float(s[0]) for s in seen])
            when = np.array([float(s[1]) for s in seen])
            ts = np.array([float(v[0]) for v in got])
            pos = np.minimum(np.searchsorted(at, ts), len(at) - 1)
            real = (at[pos] != ts) | (when[pos] > ts - step + 1e-6)  # no stamp known: keep the point
            got = [v for v, keep in zip(got, real.tolist(), strict=True) if keep]
        out.append({"metric": item.get("metric", {}), "values": got})
    return out


class SourceUnavailable(Exception):
    """The metric source could not answer: down, too slow, refused, or answered garbage."""


@dataclass(frozen=True)
class Merges:
    """What one read summed: source series that collided with another once ``drop_labels`` were removed."""

    merged: int = 0  # source series summed into another (a key with n members counts n - 1)
    example: SeriesKey | None = None  # the key with the most members
    members: int = 0  # how many source series that key summed


class MergeStats:
    """The Merges of each target's last read, kept by a source that merges series (thread-safe: the jobs of
    several targets share one source)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, Merges] = {}
        self._reported: dict[str, int] = {}

    def record(self, target: str, merges: Merges) -> None:
        with self._lock:
            self._last[target] = merges

    def last(self, target: str) -> Merges:
        with self._lock:
            return self._last.get(target, Merges())

    def take_change(self, target: str) -> Merges | None:
        """The last read's Merges if its count differs from the one this returned before (0 at first), else None."""
        with self._lock:
            last = self._last.get(target, Merges())
            if last.merged == self._reported.get(target, 0):
                return None
            self._reported[target] = last.merged
            return last


class Source(Protocol):
    def now(self) -> datetime: ...

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]: ...


def page_ranges(start: datetime, end: datetime, step: timedelta, max_points: int) -> list[tuple[datetime, datetime]]:
    """Split [start, end] on the step grid so that no request asks for more than ``max_points`` per series."""
    span = step * (max_points - 1)
    pages, lo = [], start
    while lo <= end:
        hi = min(lo + span, end)
        pages.append((lo, hi))
        lo = hi + step
    return pages


def _values(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps and finite values of one query_range result; text that is not a number counts as no data."""
    ts = np.array([v[0] for v in values], dtype=np.float64)
    text = [v[1] for v in values]
    try:
        vals = np.array(text, dtype=np.float64)  # one C loop for Prometheus's usual "12.5", "NaN", "+Inf"
    except (TypeError, ValueError):
        vals = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(float)
    ok = np.isfinite(vals)  # Prometheus writes NaN and +Inf as strings; they are not data
    return ts[ok], vals[ok]


def group_series(results: list[dict[str, Any]], drop: list[str]) -> dict[SeriesKey, pd.Series]:
    """Turn query_range results into Series keyed by label set; series that collide once ``drop`` labels
    are removed (a churning ``pod`` label, say) are summed per timestamp."""
    return merge_series(results, drop)[0]


def merge_series(results: list[dict[str, Any]], drop: list[str]) -> tuple[dict[SeriesKey, pd.Series], Merges]:
    """``group_series``, and what it summed: the series that collided once ``drop`` labels were removed."""
    keys, parsed = [], []
    for item in results:
        labels = {k: v for k, v in item.get("metric", {}).items() if k != "__name__" and k not in drop}
        keys.append(tuple(sorted(labels.items())))
        parsed.append(_values(item.get("values", [])))
    # One timestamp conversion for the whole answer: per series, pandas' fixed cost dominates short answers.
    bounds = np.cumsum([0] + [len(ts) for ts, _ in parsed])
    index = _index(np.concatenate([ts for ts, _ in parsed])) if parsed else _index(np.empty(0))
    parts: dict[SeriesKey, list[pd.Series]] = {}
    ordered: dict[SeriesKey, bool] = {}
    for i, (key, (ts, vals)) in enumerate(zip(keys, parsed, strict=True)):
        parts.setdefault(key, []).append(pd.Series(vals, index=index[bounds[i] : bounds[i + 1]]))
        ordered[key] = bool(np.all(np.diff(ts) > 0))
    out = {}
    for key, pieces in parts.items():
        if len(pieces) == 1 and ordered[key]:
            merged = pieces[0]  # the usual case: one ordered series
        else:
            # Stacked, not side by side: a piece may repeat a timestamp, which side-by-side alignment refuses.
            merged = pd.concat(pieces).groupby(level=0).sum().sort_index()
            merged = merged[np.isfinite(merged.to_numpy())]  # a sum that overflows is no data point
        if len(merged):
            out[key] = merged
    return out, _merges(keys)


def _merges(keys: list[SeriesKey]) -> Merges:
    counts = Counter(keys)
    if len(counts) == len(keys):
        return Merges()
    example, members = counts.most_common(1)[0]
    return Merges(len(keys) - len(counts), example, members)


def _index(ts: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(ts, unit="s", utc=True))


class PrometheusSource:
    """Reads one target's range of samples. Every failure becomes SourceUnavailable."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        self._keys: dict[SeriesKey, SeriesKey] = {}  # the label sets of the last answer, reused while they last
        self.merges = MergeStats()  # what each target's last read summed (daemon/merges.py reports it)
        headers = {}
        if settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        auth = None
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            auth = (settings.username, password)
        session = requests.Session()
        session.verify = str(settings.ca_file) if settings.ca_file else settings.verify_tls
        retry = Retry(
            total=settings.retries,
            backoff_factor=settings.backoff_seconds,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=("GET", "POST"),
            raise_on_status=False,
        )
        self._client = PrometheusConnect(
            url=str(settings.url).rstrip("/"),
            headers=headers or None,
            retry=retry,
            auth=auth,
            session=session,
            timeout=math.ceil(settings.timeout_seconds),
        )

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        grouped = self._fetch(target, start, end)  # the parsed answer is garbage once this returns
        # Label sets outlive the cycle (published gauges, quality tracking). The ones json made sit among
        # megabytes of parse garbage and would pin that memory for good; keep copies made now, reused
        # across cycles, so the answer's own objects all die together.
        known, self._keys = self._keys, {}
        out = {}
        for key, series in grouped.items():
            kept = known.get(key) or tuple((k.encode().decode(), v.encode().decode()) for k, v in key)
            self._keys[kept] = kept  # keyed by the copy itself: a dict keeps the first key object it saw
            out[kept] = series
        return out

    def _fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        results: dict[str, dict[str, Any]] = {}
        stamped = stamped_query(target.query)
        for lo, hi in page_ranges(start, end, target.step, self.settings.max_points_per_request):
            for item in self._query(stamped or target.query, lo, hi, target.step_seconds):
                key = repr(sorted(item.get("metric", {}).items()))
                if key in results:
                    results[key]["values"].extend(item.get("values", []))
                else:
                    results[key] = {"metric": item.get("metric", {}), "values": list(item.get("values", []))}
        answer = list(results.values())
        if stamped is not None:
            answer = drop_repeats(answer, target.step_seconds)
        grouped, merges = merge_series(answer, target.drop_labels)
        self.merges.record(target.name, merges)
        return grouped

    def _query(self, query: str, start: datetime, end: datetime, step: float) -> list[dict[str, Any]]:
        try:
            data = self._client.custom_query_range(query, start, end, step=f"{step:g}")
        except (requests.RequestException, PrometheusApiClientException, ValueError, KeyError) as exc:
            raise SourceUnavailable(_short(exc)) from exc
        if not isinstance(data, list):
            raise SourceUnavailable(f"unexpected answer: {type(data).__name__}")
        return data

    def close(self) -> None:
        self._client.close()


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."
