"""Prometheus input, the ``prometheus`` source of ``daemon.sources``: one thin class with an explicit timeout,
retries, paging, and one domain error."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from promcast.daemon.logs import brief
from promcast.daemon.settings import PrometheusSettings, TargetSettings
from promcast.daemon.sources.samples import Samples
from promcast.daemon.types import QueryRejected, SeriesKey, SourceUnavailable

__all__ = [
    "MergeStats",
    "Merges",
    "PrometheusSource",
    "drop_repeats",
    "group_series",
    "merge_samples",
    "merge_series",
    "page_ranges",
    "presence_query",
]

# A plain selector (a metric name and/or {matchers}): PromQL knows where its real samples are.
_PLAIN = re.compile(r"^\s*(?:[a-zA-Z_:][a-zA-Z0-9_:]*\s*)?(?:\{[^{}]*\})?\s*$")


def presence_query(query: str, step_seconds: float) -> str | None:
    """For a plain selector, the query that answers 1 at each step that holds a real sample of the series: a
    range query repeats a series' last sample at every step of Prometheus's 5-minute lookback after it stops, and
    only this tells the repeat from a sample. The range is a millisecond short of the step, so that a sample
    exactly on the step before (Prometheus 2 closes ranges on the left) does not count. None for any other
    expression. A second request: joined to the query by ``or``, Prometheus took longer than for both apart."""
    if not _PLAIN.match(query) or not query.strip():
        return None
    return f"present_over_time({query.strip()}[{round(step_seconds * 1000) - 1}ms])"


def drop_repeats(values: list[dict[str, Any]], present: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The value series without the points at steps with no real sample (the lookback's repeats): those become
    missing points, which the windows fill and count as imputed. ``present`` answers the presence query."""
    real: dict[str, set[Any]] = {}
    for item in present:
        labels = {k: v for k, v in item.get("metric", {}).items() if k != "__name__"}
        real[repr(sorted(labels.items()))] = {v[0] for v in item.get("values", [])}
    out = []
    for item in values:
        labels = {k: v for k, v in item.get("metric", {}).items() if k != "__name__"}
        seen = real.get(repr(sorted(labels.items())), set())
        out.append({"metric": item.get("metric", {}), "values": [v for v in item.get("values", []) if v[0] in seen]})
    return out


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
    samples, merges = merge_samples(results, drop)
    return {k: s.to_series() for k, s in samples.items()}, merges


def merge_samples(results: list[dict[str, Any]], drop: list[str]) -> tuple[dict[SeriesKey, Samples], Merges]:
    """``merge_series`` as arrays (nanosecond times, values): no pandas object per series on the usual path."""
    keys, parsed = [], []
    for item in results:
        labels = {k: v for k, v in item.get("metric", {}).items() if k != "__name__" and k not in drop}
        keys.append(tuple(sorted(labels.items())))
        ts, vals = _values(item.get("values", []))
        parsed.append((np.round(ts * 1e3).astype(np.int64) * 1_000_000, vals))  # Prometheus's times are ms
    parts: dict[SeriesKey, list[tuple[np.ndarray, np.ndarray]]] = {}
    for key, piece in zip(keys, parsed, strict=True):
        parts.setdefault(key, []).append(piece)
    out = {}
    for key, pieces in parts.items():
        if len(pieces) == 1 and bool(np.all(np.diff(pieces[0][0]) > 0)):
            merged = Samples(*pieces[0])  # the usual case: one ordered series
        else:
            # Stacked, not side by side: a piece may repeat a timestamp, which side-by-side alignment refuses.
            stacked = pd.Series(np.concatenate([v for _, v in pieces]), index=np.concatenate([t for t, _ in pieces]))
            summed = stacked.groupby(level=0).sum().sort_index()
            ok = np.isfinite(summed.to_numpy())  # a sum that overflows is no data point
            merged = Samples(summed.index.to_numpy(np.int64)[ok], summed.to_numpy(np.float64)[ok])
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

    SYNTAX_STATUSES = frozenset({400})  # what the query API answers to a query it cannot parse (bad_data)

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        self._keys: dict[SeriesKey, SeriesKey] = {}  # the label sets of the last answer, reused while they last
        self.merges = MergeStats()  # what each target's last read summed (daemon/cycle/merges.py reports it)
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
        return datetime.now(UTC)

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        return {k: s.to_series() for k, s in self.fetch_samples(target, start, end).items()}

    def fetch_samples(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, Samples]:
        """``fetch`` as arrays, for the forecast cycle (daemon/cycle/recent.py): no pandas object per series."""
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

    def _fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, Samples]:
        presence = presence_query(target.query, target.step_seconds)
        answer = self._range(target.query, target, start, end)
        if presence is not None:
            answer = drop_repeats(answer, self._range(presence, target, start, end))
        grouped, merges = merge_samples(answer, target.drop_labels)
        self.merges.record(target.name, merges)
        return grouped

    def _range(self, query: str, target: TargetSettings, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """One range query over [start, end], in pages, with each series' pages joined."""
        results: dict[str, dict[str, Any]] = {}
        for lo, hi in page_ranges(start, end, target.step, self.settings.max_points_per_request):
            for item in self._query(query, lo, hi, target.step_seconds):
                key = repr(sorted(item.get("metric", {}).items()))
                if key in results:
                    results[key]["values"].extend(item.get("values", []))
                else:
                    results[key] = {"metric": item.get("metric", {}), "values": list(item.get("values", []))}
        return list(results.values())

    def check_query(self, query: str) -> None:
        """Ask the server to evaluate ``query`` once, now: QueryRejected if it refuses the query itself (a syntax
        error), SourceUnavailable if it cannot answer at all."""
        try:
            self._client.custom_query(query)
        except (requests.RequestException, PrometheusApiClientException, ValueError, KeyError) as exc:
            raise _unavailable(exc, self.SYNTAX_STATUSES) from exc

    def _query(self, query: str, start: datetime, end: datetime, step: float) -> list[dict[str, Any]]:
        try:
            data = self._client.custom_query_range(query, start, end, step=f"{step:g}")
        except (requests.RequestException, PrometheusApiClientException, ValueError, KeyError) as exc:
            raise _unavailable(exc) from exc
        if not isinstance(data, list):
            raise SourceUnavailable(f"unexpected answer: {type(data).__name__}")
        return data

    def close(self) -> None:
        self._client.close()


# The query API's answer to a query it cannot parse (400, bad_data) or cannot evaluate (422, execution).
_REJECTED = re.compile(r"^HTTP Status Code (400|422) ")


def _unavailable(exc: BaseException, syntax: frozenset[int] = frozenset({400})) -> SourceUnavailable:
    rejected = _REJECTED.match(str(exc)) if isinstance(exc, PrometheusApiClientException) else None
    if rejected:
        return QueryRejected(brief(exc), int(rejected.group(1)) in syntax)
    return SourceUnavailable(brief(exc))
