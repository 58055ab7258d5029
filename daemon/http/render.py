"""Rendering the "snapshot" families at scrape time: the published forecasts, formatted as text lines.

A stale forecast disappears at once, and 60,000 per-series lines cost a string join, not a Sample object each.
"""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
from prometheus_client.utils import floatToGoString

from promcast.daemon.http.families import BY_NAME, FAMILIES, ModelInfo, TargetForecast, label_name

__all__ = ["render_snapshot"]

AT_ORIGIN = "promcast_forecast_at_origin"


def _head(name: str) -> str:
    f = BY_NAME[name]
    return f"# HELP {name} {f.help}\n# TYPE {name} {f.type}\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _rows(out: list[str], name: str, labels: str, row: np.ndarray) -> None:
    for h, v in enumerate(row.tolist(), start=1):
        out.append(f'{name}{{{labels},h="{h}"}} {floatToGoString(v)}\n')


def _stamp(seconds: float, openmetrics_format: bool) -> str:
    """A sample timestamp: milliseconds in the text format, seconds in OpenMetrics."""
    return f"{seconds:.3f}" if openmetrics_format else str(round(seconds * 1000))


def _labels(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)


def render_snapshot(
    forecasts: dict[str, TargetForecast],
    models: dict[str, ModelInfo],
    now: float,
    stamped: bool = False,
    openmetrics_format: bool = False,
) -> str:
    """Every "snapshot" family of FAMILIES, from fresh forecasts only; ``stamped`` adds promcast_forecast_at_origin."""
    lines: dict[str, list[str]] = {f.name: [] for f in FAMILIES if f.path == "snapshot"}
    for target, fc in sorted(forecasts.items()):
        if not fc.fresh(now):
            continue
        for family, value in (("timestamp", fc.computed_at), ("origin_timestamp", fc.origin)):
            name = f"promcast_forecast_{family}_seconds"
            lines[name].append(f"{name}{{{_labels([('target', target)])}}} {floatToGoString(value)}\n")
        for i, key in enumerate(fc.keys):
            labels = _labels([*((label_name(k), v) for k, v in key), ("target", target)])
            _series(lines, fc, i, labels, stamped, openmetrics_format)
    for target, mi in sorted(models.items()):
        pairs = list(zip(BY_NAME["promcast_model_info"].labels, (target, *astuple(mi)), strict=True))
        lines["promcast_model_info"].append(f"promcast_model_info{{{_labels(pairs)}}} 1.0\n")
    out = []
    for name, rows in lines.items():
        if name == AT_ORIGIN and not stamped:
            continue
        out.append(_head(name))
        out.extend(rows)
    return "".join(out)


def _series(
    lines: dict[str, list[str]], fc: TargetForecast, i: int, labels: str, stamped: bool, openmetrics_format: bool
) -> None:
    """The lines of series ``i`` of ``fc``: its forecast, bands, source, burst state and replicas."""
    _rows(lines["promcast_forecast"], "promcast_forecast", labels, fc.values[i])
    if stamped:
        when = _stamp(float(fc.origins[i]) if fc.origins is not None else fc.origin, openmetrics_format)
        for h, v in enumerate(fc.values[i].tolist(), start=1):
            lines[AT_ORIGIN].append(f'{AT_ORIGIN}{{{labels},h="{h}"}} {floatToGoString(v)} {when}\n')
    for level, (lo, hi) in fc.bounds.items():
        with_level = f'{labels},level="{level:g}"'
        _rows(lines["promcast_forecast_lower"], "promcast_forecast_lower", with_level, lo[i])
        _rows(lines["promcast_forecast_upper"], "promcast_forecast_upper", with_level, hi[i])
    if fc.sources is not None:
        lines["promcast_forecast_source"].append(
            f'promcast_forecast_source{{{labels},source="{_escape(fc.sources[i])}"}} 1.0\n'
        )
    if fc.burst_score is not None and fc.burst is not None and not np.isnan(fc.burst_score[i]):
        lines["promcast_burst_score"].append(
            f"promcast_burst_score{{{labels}}} {floatToGoString(float(fc.burst_score[i]))}\n"
        )
        lines["promcast_burst"].append(f"promcast_burst{{{labels}}} {floatToGoString(float(fc.burst[i]))}\n")
    if fc.replicas is not None:
        value = floatToGoString(float(fc.replicas[i]))
        lines["promcast_recommended_replicas"].append(f"promcast_recommended_replicas{{{labels}}} {value}\n")
