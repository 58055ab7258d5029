"""structlog set-up, done once in main(): JSON lines off a terminal, readable lines on one.

The standard library's loggers (APScheduler's "skipped: maximum number of running instances", urllib3's
"Retrying ...") and Python's warnings go through the same renderer, so every line on stderr is one JSON object.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["brief", "configure_logging", "get_logger"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test's capture, say), as structlog's PrintLogger does."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:  # configured again: replace, not add
        root.removeHandler(old)
    root.addHandler(handler)
    # Third-party libraries log through the standard library; keep only their warnings and errors.
    root.setLevel(max(logging.WARNING, getattr(logging, level.upper())))
    # APScheduler warns of every skipped or missed firing; the daemon's listener logs and counts each of those
    # itself (scheduler_event), and a first training skips one firing per interval on purpose.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    logging.captureWarnings(True)  # warnings.warn() lines, too, become JSON objects


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    # Resolved per call, so a replaced sys.stderr (a test's capture, say) is always the one written to.
    return structlog.PrintLogger(sys.stderr)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def brief(exc: BaseException) -> str:
    """An exception as one log field: its type and message, cut at 300 characters."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."
