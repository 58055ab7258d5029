"""Types every part of the daemon shares, free of any I/O: a series' identity and the source's one error."""

from __future__ import annotations

__all__ = ["SeriesKey", "SourceUnavailable"]

SeriesKey = tuple[tuple[str, str], ...]  # sorted (label, value) pairs that identify one series


class SourceUnavailable(Exception):
    """The metric source could not answer: down, too slow, refused, or answered garbage."""
