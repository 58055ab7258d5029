"""Prometheus faults beyond "down", and the security promises, against a tiny fake Prometheus in a thread.

The daemon runs in process with the real PrometheusSource (timeout 1 s, no retries) on a 1-second step, so
one cycle lasts a second: slow answers, HTTP 500, malformed JSON, a 401, and a series that vanishes and comes
back. Run with ``pytest -s`` to see the recovery figures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from promcast.daemon.app import Daemon
from promcast.daemon.settings import PrometheusSettings, Settings, TargetSettings
from promcast.daemon.sources.prometheus import PrometheusSource

from .support.fake_prometheus import FakePrometheus as BaseFake
from .support.fake_prometheus import sine_matrix
from .support.http import fetch, samples, wait_until

STEP = 1.0  # seconds: one cycle per real second
MAX_AGE_STEPS = 2.0
TOKEN = "s3cr3t-bearer-token-0451"
PASSWORD = "s3cr3t-basic-password-7734"


class FakePrometheus(BaseFake):
    """Answers /api/v1/query_range with ``series`` sine waves on the asked grid, or with the fault in ``mode``."""

    def __init__(self) -> None:
        super().__init__()
        self.series = 2

    def answer(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        if self.mode == "slow":
            time.sleep(1.6)  # past the 1 s timeout
        if self.mode in ("500", "401"):
            return int(self.mode), b'{"status":"error","error":"injected"}'
        if self.mode == "garbage":
            return 200, b'{"status": "success", "data": {"resultType": "matrix", "result": [{"metr'
        return 200, sine_matrix(query, self.series)


def _target() -> TargetSettings:
    return TargetSettings(
        name="load", query="load", step_seconds=STEP, window=8, history=timedelta(seconds=60), model="naive"
    )


def _settings(url: str, tmp: Path, **auth: object) -> Settings:
    prom = PrometheusSettings(url=url, timeout_seconds=1.0, retries=0, backoff_seconds=0, **auth)
    return Settings(listen="127.0.0.1:0", model_dir=tmp, ready_max_age_steps=MAX_AGE_STEPS, prometheus=prom)


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def running(fake: FakePrometheus, tmp_path: Path) -> Iterator[tuple[Daemon, str]]:
    settings = _settings(fake.url, tmp_path / "models", bearer_token=SecretStr(TOKEN))
    source = PrometheusSource(settings.prometheus)
    daemon = Daemon(settings, source, [_target()], model_poll_seconds=60)
    daemon.start()
    assert daemon.server is not None
    url = f"http://127.0.0.1:{daemon.server.port}"
    try:
        wait_until(lambda: fetch(url + "/readyz")[0] == 200, timeout=30)
        yield daemon, url
    finally:
        daemon.shutdown()
        source.close()


def _errors(url: str) -> dict[str, float]:
    return {s["stage"]: v for s, v in samples(fetch(url + "/metrics")[1], "promcast_errors_total")}


def _served(url: str) -> set[str]:
    return {s["series"] for s, _ in samples(fetch(url + "/metrics")[1], "promcast_forecast")}


@pytest.mark.parametrize("fault", ["slow", "500", "garbage"])
def test_a_faulty_prometheus_is_counted_never_served_stale_and_recovered_from(running, fake, fault: str) -> None:
    daemon, url = running
    before = _errors(url)["query"]
    fake.mode = fault
    t0 = time.monotonic()
    wait_until(lambda: fetch(url + "/readyz")[0] == 503, timeout=15)
    unready = time.monotonic() - t0
    assert not _served(url), "a forecast older than ready_max_age_steps cycles must not be served"
    assert fetch(url + "/healthz")[0] == 200, "the daemon stays up"
    assert daemon.scheduler.running
    errors = _errors(url)
    assert errors["query"] > before, errors
    if fault != "slow":  # a timed-out query overruns the 1 s cycle, whose next firing is skipped and counted
        assert errors["scheduler"] == 0, errors
    fake.mode = "ok"
    t1 = time.monotonic()
    wait_until(lambda: fetch(url + "/readyz")[0] == 200 and _served(url) == {"s0", "s1"}, timeout=10, every=0.02)
    recovery = time.monotonic() - t1
    print(
        f"\n{fault}: unready after {unready:.2f}s (limit {MAX_AGE_STEPS * STEP:g}s + a cycle), "
        f"{errors['query'] - before:.0f} query errors, recovered in {recovery:.2f}s (cycle {STEP:g}s)"
    )
    # One cycle, plus a timed-out request that may still be in flight when the fault ends, plus scrape slack.
    assert recovery <= STEP + (1.0 if fault == "slow" else 0.0) + 1.0


def test_a_series_that_vanishes_then_returns(running, fake) -> None:
    _, url = running
    fake.series = 1
    t0 = time.monotonic()
    wait_until(lambda: _served(url) == {"s0"}, timeout=10, every=0.02)
    gone = time.monotonic() - t0
    assert _errors(url)["vanished"] >= 1
    assert fetch(url + "/readyz")[0] == 200, "one vanished series does not make the target unready"
    fake.series = 2
    t1 = time.monotonic()
    wait_until(lambda: _served(url) == {"s0", "s1"}, timeout=10, every=0.02)
    back = time.monotonic() - t1
    print(f"\nvanished series: gauges gone in {gone:.2f}s, back in {back:.2f}s (cycle {STEP:g}s)")
    assert back <= STEP + 1.0


def test_no_method_but_get_and_head_on_any_route(running) -> None:
    _, url = running
    for route in ("/", "/metrics", "/healthz", "/readyz", "/nope", "/metrics?x=1"):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"):
            code = fetch(url + route, method)[0]
            assert code in (405, 501), (route, method, code)
        assert fetch(url + route, "HEAD")[1] == ""


# ---- security -------------------------------------------------------------------------------------------
def test_tls_verification_is_on_by_default() -> None:
    settings = PrometheusSettings(url="https://prometheus.example:9090")
    assert settings.verify_tls is True
    source = PrometheusSource(settings)
    try:
        assert source._client._session.verify is True
    finally:
        source.close()


@pytest.mark.parametrize(
    ("auth", "secret"),
    [({"bearer_token": SecretStr(TOKEN)}, TOKEN), ({"username": "u", "password": SecretStr(PASSWORD)}, PASSWORD)],
)
@pytest.mark.parametrize("mode", ["401", "500"])
def test_secrets_never_reach_logs_settings_or_metrics(fake, tmp_path, auth, secret: str, mode: str) -> None:
    settings = _settings(fake.url, tmp_path / "models", **auth)
    assert secret not in repr(settings)
    assert secret not in str(settings)
    assert secret not in settings.model_dump_json()
    fake.mode = mode
    source = PrometheusSource(settings.prometheus)
    daemon = Daemon(settings, source, [_target()])
    try:
        with capture_logs() as logs:
            results = daemon.run_once() + daemon.run_once()
        daemon.start()
        assert daemon.server is not None
        text = fetch(f"http://127.0.0.1:{daemon.server.port}/metrics")[1]
    finally:
        daemon.shutdown()
        source.close()
    assert not any(r.ok for r in results), "the cycles failed and said so"
    assert logs, "the cycles failed and said so"
    assert any(secret in h or h.startswith("Basic ") for h in fake.auth_seen), "the credentials were sent"
    assert secret not in repr(logs)
    assert secret not in repr(results)
    assert secret not in text
    assert _errors_in(text)["query"] >= 1


def _errors_in(text: str) -> dict[str, float]:
    return {s["stage"]: v for s, v in samples(text, "promcast_errors_total")}
