"""A real, throw-away Prometheus server on 127.0.0.1 with backfilled data: the tests', the benchmarks' and a
user's way to run promcast against a genuine ``prometheus`` binary instead of a mock. A development tool: it is
not in the wheel (``tests/support/prometheus_server.py`` adds pytest's skip).
The typical flow is::

    series = [("node_load1", {"instance": "a"}, timestamps_s, values)]
    om = tmp_path / "data.om"
    write_openmetrics(om, series)                 # 1. synthetic history
    backfill(om, tmp_path / "tsdb")               # 2. promtool -> TSDB blocks
    with PrometheusServer(tmp_path, tsdb_dir=tmp_path / "tsdb") as prom:
        prom.query("count_over_time(node_load1[3d])")   # 3. query it

Binaries are located with :func:`ensure_prometheus_installed` (plain
``shutil.which``; CI installs them with ``apt-get install prometheus``) and
:func:`tests.support.prometheus_server.require_prometheus` turns a missing installation into ``pytest.skip``.

Developed against Debian 12's ``prometheus`` 2.42.0 package.  Things that are
easy to get wrong, and that this module handles for you:

* **Timestamp units.**  OpenMetrics timestamps are *seconds* (may be
  fractional; Prometheus keeps millisecond precision).  promtool happily
  accepts milliseconds too and silently writes blocks ~50,000 years in the
  future, so :func:`write_openmetrics` rejects implausible timestamps.
* **Ordering / duplicates.**  promtool 2.42 *silently drops* samples that are
  out of order within a series, and a second sample with the same timestamp.
  :func:`write_openmetrics` sorts every series by time and rejects duplicate
  timestamps.
* **``# EOF``.**  The file must end with ``# EOF`` or promtool fails with
  ``data does not end with # EOF``.
* **Block duration.**  promtool's default is 2h blocks (37 blocks for 3 days).
  The hidden flag ``--max-block-duration`` raises it; promtool rounds it down
  to the largest of 2h, 6h, 18h, 54h, ... that fits, so the default ``24h``
  used here yields 18h blocks (5 blocks for 3 days of data ending now).
* **Retention.**  Prometheus deletes blocks older than
  ``--storage.tsdb.retention.time`` (default 15d, measured from the newest
  block).  We pass a very long retention so backfilled history is never
  deleted.
* **Overlap with the head.**  Since 2.39 overlapping blocks are always
  allowed (``--storage.tsdb.allow-overlapping-blocks`` is a deprecated no-op in
  2.42), so blocks that end "now" are fine.  But the head refuses samples
  older than the newest block's max time, so **never backfill timestamps in
  the future** or scraped samples will be rejected as out of bounds.
* **First scrape takes ~5 s.**  Target discovery updates are throttled to
  every 5 s in 2.42 (not configurable), so the first sample of a new target
  appears ~5 s after start even with ``scrape_interval="1s"`` (up to ~10 s
  with ``"5s"``); use :meth:`PrometheusServer.wait_for`.
* **Backfill before start.**  A running server only notices new blocks on
  its next block reload (about once a minute); backfill first, or
  ``stop()`` / ``start()``.
"""

from __future__ import annotations

import atexit
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

__all__ = [
    "PrometheusBinaries",
    "PrometheusError",
    "PrometheusNotInstalled",
    "PrometheusServer",
    "Series",
    "backfill",
    "ensure_prometheus_installed",
    "free_port",
    "write_openmetrics",
]

PathLike = Union[str, "os.PathLike[str]"]

#: One series: ``(metric_name, labels, timestamps, values)``.  Timestamps are
#: Unix seconds (int/float array-like) or datetimes (``pandas.DatetimeIndex``,
#: ``numpy.datetime64`` array, ...; naive datetimes are taken as UTC).
Series = tuple[str, Mapping[str, str], Any, Any]

_METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# Timestamps (seconds) outside this window are almost certainly a unit error
# (milliseconds / nanoseconds passed as seconds).  2001-09-09 .. 2286-11-20.
_MIN_PLAUSIBLE_TS_S = 1e9
_MAX_PLAUSIBLE_TS_S = 1e10

#: Default for :func:`backfill`; promtool turns 24h into 18h blocks.
DEFAULT_MAX_BLOCK_DURATION = "24h"
#: Default retention: long enough that backfilled history is never deleted.
DEFAULT_RETENTION = "3650d"


class PrometheusError(RuntimeError):
    """promtool or prometheus failed; the message carries its output."""


class PrometheusNotInstalled(PrometheusError):
    """``prometheus`` and/or ``promtool`` are not on ``PATH``."""


# --------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusBinaries:
    """Absolute paths of the two executables."""

    prometheus: str
    promtool: str


def ensure_prometheus_installed() -> PrometheusBinaries:
    """Return the paths of ``prometheus`` and ``promtool``.

    Looks them up with :func:`shutil.which`.  The environment variables
    ``PROMETHEUS_BIN`` / ``PROMTOOL_BIN`` override the lookup (useful on
    machines where the binaries are not on ``PATH``).  Nothing is installed;
    CI is expected to ``apt-get install prometheus`` beforehand.

    Raises:
        PrometheusNotInstalled: if either binary cannot be found.
    """
    found: dict[str, str] = {}
    missing: list[str] = []
    for name, env in (("prometheus", "PROMETHEUS_BIN"), ("promtool", "PROMTOOL_BIN")):
        path = shutil.which(os.environ.get(env) or name)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        raise PrometheusNotInstalled(
            f"{' and '.join(missing)} not found on PATH; install with "
            "`apt-get install prometheus` (Debian/Ubuntu) or set "
            "PROMETHEUS_BIN / PROMTOOL_BIN"
        )
    return PrometheusBinaries(prometheus=found["prometheus"], promtool=found["promtool"])


# --------------------------------------------------------------------------
# OpenMetrics writer
# --------------------------------------------------------------------------


def _to_epoch_seconds(timestamps: Any) -> np.ndarray:
    """Convert timestamps (Unix seconds, or datetimes) to float64 seconds."""
    import pandas as pd  # local import: only needed here

    if getattr(timestamps, "dtype", None) is None:
        timestamps = np.asarray(timestamps)
    dtype = timestamps.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return np.asarray(timestamps, dtype=np.float64).reshape(-1)
    # datetime64 (any unit), tz-aware pandas dtypes, objects holding datetimes.
    # Naive values are taken as UTC.
    idx = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    return np.asarray((idx - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=np.float64)


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _format_timestamp_ms(ts_ms: int) -> str:
    """Millisecond integer -> OpenMetrics seconds string without float noise."""
    seconds, millis = divmod(int(ts_ms), 1000)
    return f"{seconds}.{millis:03d}" if millis else str(seconds)


def write_openmetrics(
    path: PathLike,
    series: Iterable[Series],
    *,
    drop_nan: bool = True,
    allow_future: bool = False,
) -> int:
    """Write series to an OpenMetrics text file for ``promtool`` backfilling.

    Every metric name gets one ``# TYPE <name> gauge`` line followed by all
    of its series; every series is sorted by timestamp; the file ends with
    ``# EOF``.  Timestamps are written in seconds with millisecond precision
    (the precision Prometheus stores).

    Args:
        path: output file.
        series: ``(name, labels, timestamps, values)`` tuples; see
            :data:`Series`.  ``timestamps`` and ``values`` must have the same
            length.
        drop_nan: skip NaN values (treat them as gaps).  With ``False`` they
            are written as ``NaN`` samples, which Prometheus stores as real
            NaN values.
        allow_future: permit timestamps later than now.  Off by default:
            once such blocks are loaded, the server rejects every scraped
            sample older than the newest block's end ("out of bounds"), so
            scraping silently stops working until that time has passed.

    Returns:
        The number of samples written.

    Raises:
        ValueError: invalid metric/label names, length mismatch, the same
            (name, labels) given twice, duplicate timestamps within a series,
            timestamps that are not plausible Unix *seconds* (e.g.
            milliseconds), or timestamps in the future (unless
            ``allow_future``).
    """
    now_s = time.time()
    # name -> list of (label_string, ts_ms, values); keeps first-seen order.
    families: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    for name, labels, timestamps, values in series:
        if not _METRIC_NAME_RE.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for key in labels:
            if not _LABEL_NAME_RE.match(key) or key.startswith("__"):
                raise ValueError(f"invalid label name {key!r} for metric {name!r}")
        key_id = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
        if key_id in seen:
            raise ValueError(f"series {name}{dict(labels)} given more than once")
        seen.add(key_id)

        ts_s = _to_epoch_seconds(timestamps)
        vals = np.asarray(values, dtype=np.float64).reshape(-1)
        if ts_s.shape != vals.shape:
            raise ValueError(f"{name}{dict(labels)}: {ts_s.size} timestamps but {vals.size} values")
        if drop_nan:
            keep = ~np.isnan(vals)
            ts_s, vals = ts_s[keep], vals[keep]
        if ts_s.size:
            if not np.all(np.isfinite(ts_s)):
                raise ValueError(f"{name}{dict(labels)}: non-finite timestamps")
            lo, hi = float(ts_s.min()), float(ts_s.max())
            if lo < _MIN_PLAUSIBLE_TS_S or hi > _MAX_PLAUSIBLE_TS_S:
                raise ValueError(
                    f"{name}{dict(labels)}: timestamps {lo:.0f}..{hi:.0f} are not "
                    "Unix seconds (milliseconds/nanoseconds passed by mistake?)"
                )
            if not allow_future and hi > now_s + 1.0:
                raise ValueError(
                    f"{name}{dict(labels)}: timestamp {hi:.3f} is "
                    f"{hi - now_s:.0f}s in the future; a server loading such blocks "
                    "rejects scraped samples until then (pass allow_future=True if "
                    "that is intended)"
                )
        ts_ms = np.rint(ts_s * 1000.0).astype(np.int64)
        order = np.argsort(ts_ms, kind="stable")
        ts_ms, vals = ts_ms[order], vals[order]
        if ts_ms.size > 1 and np.any(np.diff(ts_ms) == 0):
            dup = int(ts_ms[1:][np.diff(ts_ms) == 0][0])
            raise ValueError(
                f"{name}{dict(labels)}: duplicate timestamp "
                f"{_format_timestamp_ms(dup)}s (promtool would silently drop one of "
                "the samples)"
            )
        label_str = ",".join(f'{k}="{_escape_label_value(str(v))}"' for k, v in sorted(labels.items()))
        families.setdefault(name, []).append(("{" + label_str + "}" if label_str else "", ts_ms, vals))

    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for name, members in families.items():
            fh.write(f"# TYPE {name} gauge\n")
            for label_str, ts_ms, vals in members:
                prefix = f"{name}{label_str} "
                fh.writelines(
                    f"{prefix}{_format_value(v)} {_format_timestamp_ms(t)}\n"
                    for t, v in zip(ts_ms.tolist(), vals.tolist(), strict=True)
                )
                written += int(ts_ms.size)
        fh.write("# EOF\n")
    return written


# --------------------------------------------------------------------------
# Backfill
# --------------------------------------------------------------------------


def backfill(
    openmetrics_path: PathLike,
    tsdb_dir: PathLike,
    *,
    max_block_duration: str = DEFAULT_MAX_BLOCK_DURATION,
    promtool: str | None = None,
    timeout: float = 120.0,
) -> list[str]:
    """Turn an OpenMetrics file into TSDB blocks inside ``tsdb_dir``.

    Runs ``promtool tsdb create-blocks-from openmetrics
    --max-block-duration=<d> <file> <tsdb_dir>``.  ``tsdb_dir`` can then be
    passed as ``--storage.tsdb.path`` (see :class:`PrometheusServer`); do it
    before the server starts (a running server only picks blocks up on its
    next reload, about once a minute).

    ``--max-block-duration`` is a hidden promtool flag (not in ``--help``).
    Values below 2h are ignored; others are rounded down to 2h*3^n
    (2h, 6h, 18h, 54h, ...).

    Returns:
        The names (ULIDs) of the block directories created.

    Raises:
        PrometheusError: promtool failed (message includes its stderr).
    """
    tool = promtool or ensure_prometheus_installed().promtool
    out = Path(tsdb_dir)
    out.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in out.iterdir()}
    cmd = [
        tool,
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        f"--max-block-duration={max_block_duration}",
        "--quiet",
        str(openmetrics_path),
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise PrometheusError(
            f"promtool backfill failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"stderr:\n{proc.stderr.strip()}\nstdout:\n{proc.stdout.strip()}"
        )
    return sorted(p.name for p in out.iterdir() if p.name not in before and p.is_dir() and (p / "meta.json").exists())


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is currently free on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """preexec_fn: ask Linux to SIGKILL the child when its parent dies.

    Covers the case atexit cannot: the test process itself being killed.
    (Strictly, "parent" is the thread that started the process.)
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _kill_quietly(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            proc.kill()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass


class PrometheusServer:
    """A Prometheus process bound to 127.0.0.1, for tests.

    Use as a context manager (the process is always killed on exit)::

        with PrometheusServer(tmp_path, tsdb_dir=tsdb,
                              scrape_targets=["127.0.0.1:8000"],
                              scrape_interval="1s") as prom:
            prom.query("up")

    Files under ``workdir``: ``prometheus.yml`` (generated),
    ``prometheus.log`` (stdout+stderr of every start, appended; kept for
    debugging) and, unless ``tsdb_dir`` is given, ``data/``.

    :meth:`stop` followed by :meth:`start` restarts on the **same port and
    data directory**, so data written before the stop (backfilled blocks and
    scraped samples via the WAL) is visible again.
    """

    def __init__(
        self,
        workdir: PathLike | None = None,
        *,
        tsdb_dir: PathLike | None = None,
        scrape_targets: Sequence[str] = (),
        scrape_interval: str = "1s",
        job_name: str = "test",
        enable_lifecycle: bool = False,
        retention: str = DEFAULT_RETENTION,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        extra_scrape_configs: Sequence[dict[str, Any]] = (),
        startup_timeout: float = 30.0,
        binaries: PrometheusBinaries | None = None,
    ) -> None:
        """
        Args:
            workdir: directory for config, log and (default) data; a fresh
                temporary directory if omitted (it is not deleted, for
                debugging).
            tsdb_dir: ``--storage.tsdb.path``; put backfilled blocks here.
            scrape_targets: ``host:port`` strings scraped (path ``/metrics``)
                by one job called ``job_name``.
            scrape_interval: Prometheus duration, e.g. ``"1s"`` or ``"5s"``;
                also used as the scrape timeout.
            enable_lifecycle: pass ``--web.enable-lifecycle`` (enables
                ``POST /-/reload`` and ``/-/quit``).
            retention: ``--storage.tsdb.retention.time``.
            port: fixed port; a free one is picked if omitted.  Kept across
                :meth:`stop`/:meth:`start`.
            extra_args: further command-line flags.
            extra_scrape_configs: further ``scrape_configs`` entries, as dicts.
            startup_timeout: seconds to wait for ``/-/ready``.
            binaries: explicit binaries (default: :func:`ensure_prometheus_installed`).
        """
        self.binaries = binaries or ensure_prometheus_installed()
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="prometheus-test-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tsdb_dir = Path(tsdb_dir) if tsdb_dir is not None else self.workdir / "data"
        self.config_path = self.workdir / "prometheus.yml"
        self.log_path = self.workdir / "prometheus.log"
        self.scrape_targets = list(scrape_targets)
        self.scrape_interval = scrape_interval
        self.job_name = job_name
        self.enable_lifecycle = enable_lifecycle
        self.retention = retention
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)
        self.extra_scrape_configs = [dict(c) for c in extra_scrape_configs]
        self.startup_timeout = startup_timeout
        self.startup_seconds: float | None = None  #: duration of the last start()
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], PrometheusServer] | None = None

    # ---- lifecycle -------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def write_config(self) -> Path:
        """(Re)write ``prometheus.yml`` from the current settings.

        JSON is valid YAML, so no YAML library is needed.  After changing
        :attr:`scrape_targets` call this and then :meth:`reload` (needs
        ``enable_lifecycle``) or :meth:`stop`/:meth:`start`.
        """
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                # must not exceed the interval, or the config is rejected
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [],
        }
        if self.scrape_targets:
            config["scrape_configs"].append(
                {
                    "job_name": self.job_name,
                    "static_configs": [{"targets": self.scrape_targets}],
                }
            )
        config["scrape_configs"].extend(self.extra_scrape_configs)
        self.config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return self.config_path

    def command(self) -> list[str]:
        """The full prometheus command line used by :meth:`start`."""
        cmd = [
            self.binaries.prometheus,
            f"--config.file={self.config_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.path={self.tsdb_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
        ]
        if self.enable_lifecycle:
            cmd.append("--web.enable-lifecycle")
        return cmd + self.extra_args

    def start(self) -> PrometheusServer:
        """Start the process and wait until ``/-/ready`` returns 200.

        Raises:
            PrometheusError: the process exited or did not become ready in
                time (message includes the end of the log).
        """
        if self.running:
            raise PrometheusError(f"Prometheus already running (pid {self.pid})")
        self.tsdb_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start: {' '.join(self.command())}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # no Ctrl-C propagation; killed explicitly
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        # Safety nets if the caller forgets stop(): GC and interpreter exit.
        self._finalizer = weakref.finalize(self, _kill_quietly, self._proc)
        atexit.register(self._finalizer)
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        deadline = started + self.startup_timeout
        last_error = "no answer yet"
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with code {self._proc.returncode} during start-up\n" + self.log_tail()
                )
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:  # 503 while replaying the WAL
                last_error = f"HTTP {exc.code}"
            except (OSError, http.client.HTTPException) as exc:  # not listening yet
                last_error = str(exc)
            if time.monotonic() > deadline:
                raise PrometheusError(
                    f"prometheus not ready after {self.startup_timeout}s ({last_error})\n" + self.log_tail()
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), SIGKILL after ``timeout`` seconds.

        Idempotent.  Port and data directory are kept for :meth:`start`.
        """
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            atexit.unregister(self._finalizer)
            self._finalizer.detach()
            self._finalizer = None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_quietly(proc)

    def restart(self) -> PrometheusServer:
        """:meth:`stop` then :meth:`start` (same port, same data)."""
        self.stop()
        return self.start()

    def reload(self) -> None:
        """Rewrite the config and ``POST /-/reload`` (needs ``enable_lifecycle``)."""
        self.write_config()
        self._request("/-/reload", method="POST")

    def __enter__(self) -> PrometheusServer:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        """Last ``lines`` lines of the log file, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.log_path} (last {lines} lines) ---\n{tail}"

    # ---- HTTP API --------------------------------------------------------

    def _request(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        method: str = "GET",
        timeout: float = 30.0,
    ) -> Any:
        data = urllib.parse.urlencode(params or {}).encode()
        if method == "GET":
            req = urllib.request.Request(f"{self.url}{path}?{data.decode()}", method="GET")
        else:
            req = urllib.request.Request(
                self.url + path,
                data=data,
                method=method,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            raise PrometheusError(
                f"{method} {path} {dict(params or {})} -> HTTP {exc.code}: {body.decode(errors='replace')}"
            ) from None
        if not path.startswith("/api/"):
            return body.decode(errors="replace")
        payload = json.loads(body)
        if payload.get("status") != "success":
            raise PrometheusError(f"{path} {dict(params or {})} -> {payload}")
        return payload["data"]

    def query(self, promql: str, eval_time: float | None = None) -> list[dict[str, Any]]:
        """Instant query (at ``eval_time``, Unix seconds, default now).

        Returns ``data.result``: for a vector, a list of ``{metric, value}``.

        Raises:
            PrometheusError: HTTP error or ``status != success`` (message
                includes Prometheus' ``error``).
        """
        params: dict[str, Any] = {"query": promql}
        if eval_time is not None:
            params["time"] = f"{eval_time:.3f}"
        result: list[dict[str, Any]] = self._request("/api/v1/query", params, method="POST")["result"]
        return result

    def query_range(self, promql: str, start: float, end: float, step: float | str) -> list[dict[str, Any]]:
        """Range query (Unix seconds).

        Returns ``data.result``: a list of ``{metric, values}``.

        Prometheus refuses ``(end - start) / step > 11000`` with HTTP 400.
        """
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": step,
        }
        result: list[dict[str, Any]] = self._request("/api/v1/query_range", params, method="POST")["result"]
        return result

    def wait_for(self, promql: str, timeout: float = 15.0, interval: float = 0.25) -> list[dict[str, Any]]:
        """Poll an instant query until it returns a non-empty result.

        Raises:
            TimeoutError: still empty after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} still empty after {timeout}s\n{self.log_tail(15)}")
            time.sleep(interval)
