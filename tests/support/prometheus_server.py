"""pytest's side of ``tests.support.localprom``: the same server and writers, and a missing Prometheus that skips a test
(or fails it in CI)."""

from __future__ import annotations

import os

from tests.support.localprom import (
    PrometheusBinaries,
    PrometheusError,
    PrometheusNotInstalled,
    PrometheusServer,
    backfill,
    ensure_prometheus_installed,
    free_port,
    write_openmetrics,
)

__all__ = [
    "PrometheusBinaries",
    "PrometheusError",
    "PrometheusNotInstalled",
    "PrometheusServer",
    "backfill",
    "ensure_prometheus_installed",
    "free_port",
    "require_prometheus",
    "write_openmetrics",
]


def require_prometheus(*, fail_in_ci: bool = True) -> PrometheusBinaries:
    """pytest helper: return the binaries or skip the calling test.

    When the binaries are missing this calls ``pytest.skip`` with a clear
    reason.  If the ``CI`` environment variable is set (and ``fail_in_ci``),
    it calls ``pytest.fail`` instead, so a broken CI image does not silently
    skip the integration tests.
    """
    import pytest  # local import: the rest of the module does not need pytest

    try:
        return ensure_prometheus_installed()
    except PrometheusNotInstalled as exc:
        if fail_in_ci and os.environ.get("CI", "").lower() not in (
            "",
            "0",
            "false",
            "no",
        ):
            pytest.fail(f"CI is set but Prometheus is missing: {exc}", pytrace=False)
        pytest.skip(f"Prometheus integration test skipped: {exc}")
        raise  # unreachable; keeps type checkers happy
