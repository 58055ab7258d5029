"""A real, throw-away VictoriaMetrics on 127.0.0.1 with imported data: the tests' way to run promcast against a
genuine ``victoria-metrics`` binary (Debian's package, 1.79.5). A development tool, outside the wheel.
The typical flow is::

    with VictoriaMetricsServer(tmp_path) as vm:
        vm.import_series([("node_load1", {"instance": "a"}, timestamps_s, values)])   # 1. history, now searchable
        vm.query_range("node_load1", start, end, 60)                                 # 2. query it

Things that are easy to get wrong, and that this module handles for you:

* **Timestamp units.** ``/api/v1/import/prometheus`` reads the text format, whose timestamps are milliseconds
  (OpenMetrics files, promtool's input, have seconds). :meth:`VictoriaMetricsServer.import_series` takes seconds.
* **Visibility.** Imported samples become searchable only after an in-memory flush (about a second);
  ``import_series`` asks for one (``/internal/force_flush``) before it returns.
* **The response cache.** Range query answers are cached; :meth:`VictoriaMetricsServer.query_range` passes
  ``nocache=1``, so a test reads what is stored now.
* **Retention.** The default keeps a month; samples older than the retention are dropped without an error, so
  the server keeps 100 years.
* **The future.** Samples up to 2 days ahead are kept; later ones are dropped with only a log line.
* **The last 30 s.** For a step under 1 min, range queries answer the points of the last 30 s
  (``-search.latencyOffset``) with the value of the point before.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.support.localprom import Series, _die_with_parent, free_port

__all__ = [
    "VictoriaMetricsError",
    "VictoriaMetricsNotInstalled",
    "VictoriaMetricsServer",
    "ensure_victoriametrics_installed",
    "require_victoriametrics",
    "text_lines",
]


class VictoriaMetricsError(RuntimeError):
    """victoria-metrics failed or refused a request; the message carries its answer or its log."""


class VictoriaMetricsNotInstalled(VictoriaMetricsError):
    """``victoria-metrics`` is not on ``PATH``."""


def ensure_victoriametrics_installed() -> str:
    """The path of ``victoria-metrics`` (``VICTORIA_METRICS_BIN`` overrides the name). Nothing is installed here:
    ``scripts/bootstrap --prometheus`` installs Debian's package."""
    path = shutil.which(os.environ.get("VICTORIA_METRICS_BIN") or "victoria-metrics")
    if path is None:
        raise VictoriaMetricsNotInstalled(
            "victoria-metrics not found on PATH; install it with `apt-get install victoria-metrics` "
            "(or scripts/bootstrap --prometheus), or set VICTORIA_METRICS_BIN"
        )
    return path


def require_victoriametrics() -> str:
    """pytest helper: the binary, or skip the calling test; with ``CI`` set a missing binary fails it instead."""
    import pytest  # local import: the rest of the module does not need pytest

    try:
        return ensure_victoriametrics_installed()
    except VictoriaMetricsNotInstalled as exc:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but VictoriaMetrics is missing: {exc}", pytrace=False)
        pytest.skip(f"VictoriaMetrics integration test skipped: {exc}")
        raise  # unreachable; keeps type checkers happy


def _seconds(timestamps: Any) -> np.ndarray:
    """Unix seconds from seconds or datetimes (naive ones are UTC)."""
    arr = timestamps if getattr(timestamps, "dtype", None) is not None else np.asarray(timestamps)
    if np.issubdtype(arr.dtype, np.number):
        return np.asarray(arr, dtype=np.float64).reshape(-1)
    index = pd.DatetimeIndex(pd.to_datetime(arr, utc=True))
    return np.asarray((index - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=np.float64)


def text_lines(series: Iterable[Series]) -> list[str]:
    """The text-format lines of ``series`` (timestamps in milliseconds); NaN values are left out."""
    lines = []
    for name, labels, timestamps, values in series:
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        head = f"{name}{{{text}}}" if text else name
        ts = _seconds(timestamps)
        vals = np.asarray(values, dtype=np.float64).reshape(-1)
        if ts.shape != vals.shape:
            raise ValueError(f"{name}{dict(labels)}: {ts.size} timestamps but {vals.size} values")
        if ts.size and not 1e9 <= ts.min() <= ts.max() <= 1e10:
            raise ValueError(f"{name}{dict(labels)}: timestamps are not Unix seconds")
        lines.extend(
            f"{head} {v!r} {round(t * 1000)}\n"
            for t, v in zip(ts.tolist(), vals.tolist(), strict=True)
            if not math.isnan(v)
        )
    return lines


class VictoriaMetricsServer:
    """A victoria-metrics process bound to 127.0.0.1 on a free port, its data in ``workdir/data`` and its log in
    ``workdir/victoria-metrics.log``. Use as a context manager: the process is always stopped on exit."""

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.binary = ensure_victoriametrics_installed()
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="vm-test-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "victoria-metrics.log"
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def import_url(self) -> str:
        """The text-format import endpoint (the forecast writer's ``push.url``)."""
        return self.url + "/api/v1/import/prometheus"

    def command(self) -> list[str]:
        return [
            self.binary,
            f"-storageDataPath={self.data_dir}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            *self.extra_args,
        ]

    def start(self) -> VictoriaMetricsServer:
        """Start the process and wait until ``/health`` answers OK."""
        if self._proc is not None and self._proc.poll() is None:
            raise VictoriaMetricsError(f"victoria-metrics already running (pid {self._proc.pid})")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # no Ctrl-C propagation; stopped explicitly
                preexec_fn=_die_with_parent,  # killed with the test process, whatever kills that
            )
        atexit.register(self.stop)  # the caller forgot stop(): the interpreter's exit does it
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                raise VictoriaMetricsError(f"victoria-metrics exited with {self._proc.returncode}\n{self.log_tail()}")
            try:
                if self._get("/health") == b"OK":
                    return self
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                self.stop()
                raise VictoriaMetricsError(
                    f"victoria-metrics not ready after {self.startup_timeout}s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds. Idempotent; the data directory is kept."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> VictoriaMetricsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return "\n".join(text.splitlines()[-lines:])

    # ---- HTTP API --------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None) -> bytes:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=30) as resp:
            return bytes(resp.read())

    def flush(self) -> None:
        """Make every sample received so far searchable now."""
        self._get("/internal/force_flush")

    def import_series(self, series: Iterable[Series]) -> int:
        """Import ``(name, labels, timestamps in seconds or datetimes, values)`` series; returns the samples sent.
        The samples are searchable when this returns."""
        lines = text_lines(series)
        req = urllib.request.Request(self.import_url, data="".join(lines).encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60):
                pass
        except urllib.error.HTTPError as exc:
            raise VictoriaMetricsError(f"import -> HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None
        self.flush()
        return len(lines)

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query (Unix seconds), uncached: ``data.result``, a list of ``{metric, values}``."""
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}", "nocache": "1"}
        try:
            payload = json.loads(self._get("/api/v1/query_range", params))
        except urllib.error.HTTPError as exc:
            raise VictoriaMetricsError(f"{params} -> HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None
        if payload.get("status") != "success":
            raise VictoriaMetricsError(f"{params} -> {payload}")
        result: list[dict[str, Any]] = payload["data"]["result"]
        return result
