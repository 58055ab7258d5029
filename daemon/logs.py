"""structlog set-up, done once in main(): JSON lines off a terminal, readable lines on one."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger"]


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # APScheduler logs through the standard library; keep only its warnings.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    # Resolved per call, so a replaced sys.stderr (a test's capture, say) is always the one written to.
    return structlog.PrintLogger(sys.stderr)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
