"""The one writer of the offline replays' reports: a result's metrics.json, its data tables, its report.md and its
figures, each file written whole or not at all. The figures need matplotlib, an optional extra (``PLOTS_EXTRA``):
without it a report holds the rest, and says which figures it skipped."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promcast.forecaster.artifact import write_atomic

__all__ = ["INTERNAL", "PLOTS_EXTRA", "Report", "document", "plots_available", "skipped_note", "write_report"]

INTERNAL: Mapping[str, Any] = {"report": False}  # a field's metadata: kept out of metrics.json (arrays, timestamps)
PLOTS_EXTRA = "promcast[plots]"  # the extra that brings matplotlib


def plots_available() -> bool:
    """True when matplotlib would import; looked up without importing it."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a half-removed install
        return False


@dataclass(frozen=True)
class Report:
    """What a replay writes into its folder, in this order: metrics.json (the result's ``document``), the data
    tables, report.md, then the figures (rendered only when written)."""

    result: Any  # a dataclass instance
    markdown: str
    tables: Mapping[str, bytes] = field(default_factory=dict)  # file name: contents
    figures: Mapping[str, Callable[[], bytes]] = field(default_factory=dict)  # file name: its renderer
    skipped: tuple[str, ...] = ()  # the figures not drawn, for want of matplotlib


def skipped_note(report: Report) -> str | None:
    """The line a command prints where the report skipped its figures; None where it skipped none."""
    if not report.skipped:
        return None
    return (
        f"figures skipped ({', '.join(report.skipped)}): matplotlib is not installed; "
        f"pip install '{PLOTS_EXTRA}' draws them"
    )


def document(result: Any) -> dict[str, Any]:
    """A result's JSON document: ``dataclasses.asdict`` of its fields, less the INTERNAL ones and those left None
    (a replay without labels has no scores)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if f.metadata.get("report", True) and value is not None:
            out[f.name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """``value`` as JSON types: dataclasses through ``asdict``, within dicts and lists too."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_report(out: Path, report: Report) -> list[Path]:
    """Write ``report`` into ``out`` (created if missing); the paths written, in order."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_atomic(out / "metrics.json", json.dumps(document(report.result), indent=2).encode())]
    paths += [write_atomic(out / name, data) for name, data in report.tables.items()]
    paths.append(write_atomic(out / "report.md", report.markdown.encode()))
    paths += [write_atomic(out / name, render()) for name, render in report.figures.items()]
    return paths
