"""The forecast writer: after each cycle that published, the target's published forecasts go to an import endpoint
(VictoriaMetrics' /api/v1/import/prometheus) as samples stamped at their own future times, so that a dashboard draws
them ahead of now. Off unless ``push.url`` is set; a failed push is logged and counted, and forecasting goes on.

VictoriaMetrics keeps every sample it is sent and replaces none: two samples of one series at one time read back in
either order. Consecutive cycles forecast the same times, so step h is stamped h milliseconds before its time. Where
forecasts overlap, the newest is then the last sample at or before the time, the one a query returns there.
"""

from __future__ import annotations

import gzip
import math
import time
from urllib.parse import urlsplit, urlunsplit

import requests

from promcast.daemon.http.families import TargetForecast, label_name
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.logs import brief, get_logger
from promcast.daemon.settings import TargetSettings
from promcast.daemon.settings.sinks import PushSettings
from promcast.daemon.types import SeriesKey

__all__ = ["STAGE", "ForecastPusher", "make_pusher", "push_lines"]

log = get_logger("promcast.push")

STAGE = "push"  # the stage label of promcast_errors_total that counts failed pushes


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _series_labels(key: SeriesKey, target: str) -> list[tuple[str, str]]:
    """The forecast gauge's labels: the series' own (renamed as on /metrics), then target."""
    own = [(label_name(k), v) for k, v in key]
    own = [("exported_bound" if k == "bound" else k, v) for k, v in own]  # bound is the writer's own label
    return [*own, ("target", target)]


def push_lines(metric: str, target: str, step_seconds: float, fc: TargetForecast, bands: bool) -> list[str]:
    """One text-format line per finite value of ``fc``: step h of a series at its origin + h steps - h ms."""
    step_ms = round(step_seconds * 1000)
    out: list[str] = []
    for i, key in enumerate(fc.keys):
        stamps = [round(_origin(fc, i) * 1000) + h * (step_ms - 1) for h in range(1, fc.values.shape[1] + 1)]
        base = _series_labels(key, target)
        rows: list[tuple[list[tuple[str, str]], list[float]]] = [(base, fc.values[i].tolist())]
        if bands:
            for level, (lo, hi) in fc.bounds.items():
                rows.append(([*base, ("level", f"{level:g}"), ("bound", "lower")], lo[i].tolist()))
                rows.append(([*base, ("level", f"{level:g}"), ("bound", "upper")], hi[i].tolist()))
        for pairs, values in rows:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
            out.extend(
                f"{metric}{{{labels}}} {v!r} {t}\n" for v, t in zip(values, stamps, strict=True) if math.isfinite(v)
            )
    return out


class ForecastPusher:
    """Pushes each target's published forecasts once per origin. Each target's cycles call ``push`` in turn."""

    def __init__(self, settings: PushSettings, metrics: Metrics, targets: list[TargetSettings]) -> None:
        self.settings, self.metrics, self.url = settings, metrics, str(settings.url)
        parts = urlsplit(self.url)  # the URL as logged: without a user and password it may carry
        self.shown = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self.steps = {t.name: t.step_seconds for t in targets}
        self._pushed: dict[str, dict[SeriesKey, float]] = {t.name: {} for t in targets}  # series -> origin pushed

    def push(self, target: str) -> bool:
        """Push what ``target`` publishes now, for the series whose origin has not been pushed yet. Never raises:
        a failure is logged and counted under stage ``push``; a later cycle of the same step tries that origin again."""
        fc = self.metrics.snapshot()[0].get(target)
        if fc is None:
            return False
        pushed = self._pushed[target]
        fresh = [i for i, key in enumerate(fc.keys) if pushed.get(key) != _origin(fc, i)]
        if not fresh:
            return True
        part = _subset(fc, fresh)
        t0 = time.perf_counter()
        try:
            lines = push_lines(self.settings.metric, target, self.steps[target], part, self.settings.bands)
            body = gzip.compress("".join(lines).encode(), compresslevel=1)
            headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain"}
            answer = requests.post(self.url, data=body, headers=headers, timeout=self.settings.timeout_seconds)
            if answer.status_code >= 300:
                raise requests.HTTPError(f"HTTP {answer.status_code}: {answer.text.strip()[:200]}")
        except Exception as exc:  # the writer's boundary: forecasting never fails with the sink
            self.metrics.error(target, STAGE)
            log.warning("push_failed", target=target, url=self.shown, series=len(fresh), error=brief(exc))
            return False
        pushed.update((fc.keys[i], _origin(fc, i)) for i in fresh)
        self._pushed[target] = {k: pushed[k] for k in fc.keys if k in pushed}  # a vanished series is forgotten
        seconds = round(time.perf_counter() - t0, 4)
        log.debug("forecast_pushed", target=target, series=len(fresh), samples=len(lines), seconds=seconds)
        return True


def _origin(fc: TargetForecast, i: int) -> float:
    return float(fc.origins[i]) if fc.origins is not None else fc.origin


def _subset(fc: TargetForecast, rows: list[int]) -> TargetForecast:
    """``fc`` with only the series ``rows``."""
    if len(rows) == len(fc.keys):
        return fc
    return TargetForecast(
        fc.computed_at,
        fc.origin,
        tuple(fc.keys[i] for i in rows),
        fc.values[rows],
        fc.max_age,
        {level: (lo[rows], hi[rows]) for level, (lo, hi) in fc.bounds.items()},
        origins=fc.origins[rows] if fc.origins is not None else None,
    )


def make_pusher(settings: PushSettings, metrics: Metrics, targets: list[TargetSettings]) -> ForecastPusher | None:
    """The forecast writer, or None where ``push.url`` is unset."""
    return ForecastPusher(settings, metrics, targets) if settings.url is not None else None
