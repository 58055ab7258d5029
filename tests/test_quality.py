"""Live forecast quality: the daemon's rolling MAE equals the offline one; bands, coverage and replicas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from promcast.daemon.app import Daemon
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource

from .support.http import samples


class SteppedDemo(DemoSource):
    """The demo workload on a clock the test advances one step at a time."""

    def __init__(self, settings: DemoSettings, step: timedelta) -> None:
        super().__init__(settings, step)
        self.clock = datetime(2026, 1, 5, tzinfo=UTC)

    def now(self) -> datetime:
        return self.clock


@pytest.fixture
def replay(tmp_path):
    target = TargetSettings(
        name="demo",
        query=DEMO_QUERY,
        step_seconds=60,
        window=24,
        history=timedelta(hours=12),
        epochs=2,
        hparams={"hidden": 8},
        capacity_per_replica=25.0,
        levels=[0.8, 0.95],
    )
    source = SteppedDemo(DemoSettings(series=2, workload="bursty"), target.step)
    daemon = Daemon(Settings(listen="127.0.0.1:0", model_dir=tmp_path), source, [target])
    results = []
    for _ in range(60):
        source.clock += target.step
        results.append(daemon.jobs["demo"]())
    assert all(r.ok for r in results)
    return daemon, source, target, results


def test_published_rolling_mae_equals_the_offline_one(replay) -> None:
    daemon, source, target, results = replay
    last = results[-1].end
    actual = source.fetch(target, results[0].end, last)
    errors: list[list[float]] = [[] for _ in range(12)]
    for r in results[:-1]:
        for key, row in zip(r.keys, r.forecasts, strict=True):
            for h in range(12):
                when = r.end + (h + 1) * target.step
                if when <= last:
                    errors[h].append(abs(float(actual[key][when]) - row[h]))
    for h in range(12):
        published = daemon.registry.get_sample_value("promcast_forecast_error_mae", {"target": "demo", "h": str(h + 1)})
        assert published == pytest.approx(np.mean(errors[h]), rel=1e-9), f"h={h + 1}"


def test_bands_coverage_skill_and_replicas_are_exported(replay) -> None:
    daemon, source, target, results = replay
    text = daemon.metrics.exposition().decode()
    point = {(s["series"], s["h"]): v for s, v in samples(text, "promcast_forecast")}
    for name, sign in (("promcast_forecast_lower", -1), ("promcast_forecast_upper", 1)):
        got = samples(text, name)
        assert {s["level"] for s, _ in got} == {"0.8", "0.95"}
        assert all(sign * (v - point[(s["series"], s["h"])]) >= 0 for s, v in got)
    for level in ("0.8", "0.95"):
        cov = daemon.registry.get_sample_value("promcast_interval_coverage_ratio", {"target": "demo", "level": level})
        assert cov is not None
        assert 0.0 <= cov <= 1.0
    # Skill is 1 - (sum over h of the model's MAE) / (sum over h of naive's MAE), from the published per-step gauges.
    mae = [
        daemon.registry.get_sample_value("promcast_forecast_error_mae", {"target": "demo", "h": str(h)})
        for h in range(1, 13)
    ]
    naive = [
        daemon.registry.get_sample_value("promcast_forecast_naive_error_mae", {"target": "demo", "h": str(h)})
        for h in range(1, 13)
    ]
    assert all(m is not None and n for m, n in zip(mae, naive, strict=True))
    skill = daemon.registry.get_sample_value("promcast_forecast_skill_ratio", {"target": "demo"})
    assert skill == pytest.approx(1.0 - sum(mae) / sum(naive), rel=1e-9)  # type: ignore[arg-type]
    upper95 = {(s["series"], s["h"]): v for s, v in samples(text, "promcast_forecast_upper") if s["level"] == "0.95"}
    end = results[-1].end
    last = {dict(k)["series"]: float(x.iloc[-1]) for k, x in source.fetch(target, end - target.step, end).items()}
    replicas = samples(text, "promcast_recommended_replicas")
    assert len(replicas) == 2
    for s, v in replicas:  # the peak of the widest upper bound, never below what the last actual value needs
        peak = max(upper95[(s["series"], str(h))] for h in range(1, 13))
        assert v == float(np.clip(max(np.ceil(peak / 25.0), np.ceil(last[s["series"]] / 25.0)), 1, 100))
