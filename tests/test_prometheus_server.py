"""Tests proving the Prometheus test harness works against a real server.

Needs the ``prometheus`` and ``promtool`` binaries (Debian: ``apt-get install
prometheus``); skipped otherwise (failed instead when ``CI`` is set).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from .support.prometheus_server import (
    PrometheusBinaries,
    PrometheusError,
    PrometheusServer,
    backfill,
    free_port,
    require_prometheus,
    write_openmetrics,
)

METRIC = "promcast_harness_load"
STEP_S = 60
DAYS = 3
HTTP_TIMEOUT = 10


@pytest.fixture(scope="module")
def binaries() -> PrometheusBinaries:
    return require_prometheus()


@dataclass
class Backfilled:
    tsdb_dir: Path
    timestamps: np.ndarray  # int seconds, ascending, last one <= now
    values: dict[str, np.ndarray]  # host label -> values

    @property
    def first(self) -> int:
        return int(self.timestamps[0])

    @property
    def last(self) -> int:
        return int(self.timestamps[-1])


@pytest.fixture
def backfilled(tmp_path: Path, binaries: PrometheusBinaries) -> Backfilled:
    """3 days of 1-minute data for two series, ending at the current minute."""
    last = int(time.time()) // STEP_S * STEP_S  # never in the future
    ts = np.arange(last - DAYS * 86400, last + 1, STEP_S, dtype=np.int64)
    n = ts.size
    values = {
        "a": np.arange(n, dtype=np.float64),  # value == index: easy to check
        "b": 1000.0 + 0.5 * np.arange(n) + np.sin(np.arange(n) / 60.0),
    }
    # Shuffle series "a" to prove the writer sorts; give "b" as pandas datetimes.
    perm = np.random.default_rng(0).permutation(n)
    series = [
        (METRIC, {"host": "a", "env": "test"}, ts[perm], values["a"][perm]),
        (
            METRIC,
            {"host": "b", "env": "test"},
            pd.to_datetime(ts, unit="s", utc=True),
            values["b"],
        ),
    ]
    om = tmp_path / "history.om"
    assert write_openmetrics(om, series) == 2 * n
    blocks = backfill(om, tmp_path / "tsdb", promtool=binaries.promtool)
    assert blocks, "promtool created no blocks"
    return Backfilled(tmp_path / "tsdb", ts, values)


@pytest.fixture
def server(tmp_path: Path, backfilled: Backfilled, binaries: PrometheusBinaries) -> Iterator[PrometheusServer]:
    with PrometheusServer(tmp_path / "prom", tsdb_dir=backfilled.tsdb_dir, binaries=binaries) as prom:
        yield prom


def api(prom: PrometheusServer, endpoint: str, **params: str | int | float) -> requests.Response:
    return requests.get(f"{prom.url}/api/v1/{endpoint}", params=params, timeout=HTTP_TIMEOUT)


def by_host(result: list[dict]) -> dict[str, dict]:
    return {r["metric"]["host"]: r for r in result}


def port_is_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------
# Writer / backfill (no server)
# --------------------------------------------------------------------------


def test_write_openmetrics_format(tmp_path: Path) -> None:
    path = tmp_path / "x.om"
    n = write_openmetrics(
        path,
        [
            (
                "m",
                {"q": 'a"b\\c\nd'},
                [1_700_000_120, 1_700_000_000.5, 1_700_000_060],
                [3, 1, float("inf")],
            ),
            ("other", {}, np.array([1_700_000_000]), [float("nan")]),  # NaN dropped
            (
                "m",
                {"q": "z"},
                pd.DatetimeIndex(["2023-11-14 22:13:20"]),
                [7],
            ),  # naive = UTC
        ],
    )
    assert n == 4
    assert path.read_text().splitlines() == [
        "# TYPE m gauge",
        'm{q="a\\"b\\\\c\\nd"} 1.0 1700000000.500',
        'm{q="a\\"b\\\\c\\nd"} +Inf 1700000060',
        'm{q="a\\"b\\\\c\\nd"} 3.0 1700000120',
        'm{q="z"} 7.0 1700000000',
        "# TYPE other gauge",
        "# EOF",
    ]


@pytest.mark.parametrize(
    "series, match",
    [
        (("m", {}, [1_700_000_000_000], [1.0]), "not Unix seconds"),  # milliseconds
        (("m", {}, [1_700_000_000, 1_700_000_000], [1.0, 2.0]), "duplicate timestamp"),
        (("m", {}, [1_700_000_000], [1.0, 2.0]), "1 timestamps but 2 values"),
        (("bad-name", {}, [1_700_000_000], [1.0]), "invalid metric name"),
        (("m", {}, [time.time() + 3600], [1.0]), "in the future"),
        (("m", {"__name__": "x"}, [1_700_000_000], [1.0]), "invalid label name"),
    ],
)
def test_write_openmetrics_rejects(tmp_path: Path, series: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        write_openmetrics(tmp_path / "x.om", [series])


def test_backfill_error_carries_promtool_stderr(tmp_path: Path, binaries: PrometheusBinaries) -> None:
    bad = tmp_path / "bad.om"
    bad.write_text("# TYPE m gauge\nm 1 1700000000\n")  # no "# EOF"
    with pytest.raises(PrometheusError, match="data does not end with # EOF"):
        backfill(bad, tmp_path / "tsdb", promtool=binaries.promtool)


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


def test_backfilled_history_is_queryable(server: PrometheusServer, backfilled: Backfilled) -> None:
    bf = backfilled
    n = bf.timestamps.size
    assert server.startup_seconds is not None
    assert server.startup_seconds < 30

    # Every sample of the 3 days, both series.  [3d1m] sidesteps range-boundary
    # inclusivity; evaluated at the last sample's time.
    r = api(server, "query", query=f"count_over_time({METRIC}[{DAYS}d1m])", time=bf.last)
    assert r.status_code == 200, r.text
    counts = {host: int(float(s["value"][1])) for host, s in by_host(r.json()["data"]["result"]).items()}
    assert counts == {"a": n, "b": n}

    # Same via the harness helper, evaluated "now".
    assert len(server.query(f"count_over_time({METRIC}[{DAYS}d])")) == 2

    # query_range over the whole history at the native resolution: oldest
    # (3 days old, i.e. far older than the 2h head) and newest points present
    # with exact values.
    r = api(
        server,
        "query_range",
        query=METRIC,
        start=bf.first,
        end=bf.last,
        step=f"{STEP_S}s",
    )
    assert r.status_code == 200, r.text
    result = by_host(r.json()["data"]["result"])
    assert set(result) == {"a", "b"}
    for host, expected in bf.values.items():
        points = result[host]["values"]
        assert len(points) == n
        ts = np.array([p[0] for p in points], dtype=np.float64)
        vals = np.array([float(p[1]) for p in points])
        np.testing.assert_array_equal(ts, bf.timestamps)
        np.testing.assert_allclose(vals, expected, rtol=0, atol=1e-9)
    assert time.time() - bf.first > DAYS * 86400 - 1  # the oldest really is old

    # An old-only window (between 3 days and 2 hours ago) has data...
    old_end = bf.last - 2 * 3600 - STEP_S
    old = server.query_range(f'{METRIC}{{host="a"}}', bf.first, old_end, "1h")
    assert float(old[0]["values"][0][1]) == 0.0

    # ...and an instant query "now" returns the most recent backfilled value.
    latest = by_host(server.query(METRIC))
    assert float(latest["a"]["value"][1]) == float(n - 1)
    assert float(latest["b"]["value"][1]) == pytest.approx(bf.values["b"][-1])


def test_stop_and_start_keep_port_and_data(server: PrometheusServer, backfilled: Backfilled) -> None:
    query = f"count_over_time({METRIC}[{DAYS}d1m])"
    before = server.query(query, eval_time=backfilled.last)
    url, port, pid = server.url, server.port, server.pid

    server.stop()
    assert not server.running
    assert not port_is_open(port)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/-/ready", timeout=HTTP_TIMEOUT)

    server.start()
    assert (server.url, server.port) == (url, port)
    assert server.pid != pid
    assert requests.get(f"{url}/-/ready", timeout=HTTP_TIMEOUT).status_code == 200
    after = server.query(query, eval_time=backfilled.last)
    assert by_host(after) == by_host(before)
    assert "===== start:" in server.log_path.read_text()


def test_scrapes_a_target(tmp_path: Path, backfilled: Backfilled, binaries: PrometheusBinaries) -> None:
    # Also proves scraping works on top of blocks that end "now" (the head
    # rejects samples older than the newest block's max time).
    registry = CollectorRegistry()
    gauge = Gauge("promcast_harness_probe", "test gauge", ["kind"], registry=registry)
    gauge.labels(kind="x").set(42)
    port = free_port()
    httpd, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with PrometheusServer(
            tmp_path / "prom",
            tsdb_dir=backfilled.tsdb_dir,
            scrape_targets=[f"127.0.0.1:{port}"],
            scrape_interval="1s",
            enable_lifecycle=True,
            binaries=binaries,
        ) as prom:
            t0 = time.monotonic()
            result = prom.wait_for('promcast_harness_probe{job="test"}', timeout=15)
            assert float(result[0]["value"][1]) == 42.0
            assert result[0]["metric"]["instance"] == f"127.0.0.1:{port}"
            assert time.monotonic() - t0 < 15

            r = api(prom, "query", query='up{job="test"}')
            assert [float(s["value"][1]) for s in r.json()["data"]["result"]] == [1.0]

            gauge.labels(kind="x").set(43)
            deadline = time.monotonic() + 10
            while float(prom.query("promcast_harness_probe")[0]["value"][1]) != 43.0:
                assert time.monotonic() < deadline, "updated value never scraped"
                time.sleep(0.25)

            # Backfilled history is still there alongside the scraped data.
            assert len(prom.query(f"count_over_time({METRIC}[{DAYS}d])")) == 2
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_query_range_point_limit(server: PrometheusServer, backfilled: Backfilled) -> None:
    """Prometheus 2.42 refuses (end - start) / step > 11000 (i.e. > 11,001 points)."""
    end = backfilled.last
    ok = api(server, "query_range", query=METRIC, start=end - 11000, end=end, step=1)
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["data"]["result"][0]["values"]) == 11001

    refused = api(server, "query_range", query=METRIC, start=end - 11001, end=end, step=1)
    assert refused.status_code == 400
    assert refused.json() == {
        "status": "error",
        "errorType": "bad_data",
        "error": "exceeded maximum resolution of 11,000 points per timeseries. "
        "Try decreasing the query resolution (?step=XX)",
    }
    with pytest.raises(PrometheusError, match="exceeded maximum resolution of 11,000 points"):
        server.query_range(METRIC, end - 11001, end, 1)


def test_process_killed_on_context_exit(tmp_path: Path, binaries: PrometheusBinaries) -> None:
    with PrometheusServer(tmp_path, binaries=binaries) as prom:
        proc_port = prom.port
        assert prom.running
        assert port_is_open(proc_port)
    assert not prom.running
    assert not port_is_open(proc_port)
