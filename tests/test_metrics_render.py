"""The /metrics page: per-series families rendered from arrays parse back exactly, and stale ones are dropped."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from promcast.daemon.http.families import TargetForecast
from promcast.daemon.http.metrics import Metrics


def _page(forecasts: dict[str, TargetForecast], now: float) -> dict[str, list]:
    metrics = Metrics(CollectorRegistry(), list(forecasts), clock=lambda: now)
    for target, fc in forecasts.items():
        metrics.publish(target, fc)
    text = metrics.exposition().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_awkward_labels_and_values_round_trip_through_the_text_format() -> None:
    keys = ((("path", 'a"b\\c\nd'), ("target", "clash")), ())  # quotes, backslash, newline; a label-less series
    values = np.array([np.arange(12) * 1e-3, np.arange(12) * 1e9 + 0.5])
    bounds = {0.8: (values - 1, values + 1)}
    fc = TargetForecast(100.0, 60.0, keys, values, 300.0, bounds, np.array([3.0, 7.0]))
    page = _page({"web": fc}, now=100.0)

    point = page["promcast_forecast"]
    assert len(point) == 24
    first = [s for s in point if s.labels.get("path") == 'a"b\\c\nd']
    assert {s.labels["exported_target"] for s in first} == {"clash"}  # a series label never hides ours
    assert {s.labels["target"] for s in point} == {"web"}
    got = {(s.labels.get("path"), int(s.labels["h"])): s.value for s in point}
    for i, key in enumerate(keys):
        path = dict(key).get("path")
        for h in range(12):
            assert got[(path, h + 1)] == values[i, h]
    lower = page["promcast_forecast_lower"]
    assert {s.labels["level"] for s in lower} == {"0.8"}
    assert len(lower) == 24
    assert sorted(s.value for s in page["promcast_recommended_replicas"]) == [3.0, 7.0]


def test_a_stale_snapshot_is_not_rendered_but_its_families_still_are_declared() -> None:
    fc = TargetForecast(100.0, 60.0, ((("pod", "a"),),), np.ones((1, 12)), 30.0)
    fresh = _page({"web": fc}, now=120.0)
    stale = _page({"web": fc}, now=131.0)
    assert len(fresh["promcast_forecast"]) == 12
    assert stale["promcast_forecast"] == []
    assert stale["promcast_forecast_timestamp_seconds"] == []


def test_the_page_holds_exactly_the_families_of_the_table() -> None:
    from promcast.daemon.build import BuildInfo
    from promcast.daemon.http.families import FAMILIES, ModelInfo

    metrics = Metrics(CollectorRegistry(), ["web"], clock=lambda: 100.0, stamped=True)
    metrics.register_process(BuildInfo("0.1.0", "abc", "3.11"))
    bounds = {0.8: (np.zeros((1, 12)), np.ones((1, 12)))}
    metrics.publish("web", TargetForecast(100.0, 60.0, ((("pod", "a"),),), np.ones((1, 12)), 30.0, bounds, np.ones(1)))
    metrics.set_model("web", ModelInfo("mlp", "v1", "2026-01-01T00:00:00+00:00", "numpy"))
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    ours = {n for n in families if n.startswith("promcast_") and not n.endswith("_created")}  # counters' own
    assert ours == {f.name for f in FAMILIES}
    for f in FAMILIES:
        got = families[f.name]
        assert (got.type, got.documentation) == (f.type, f.help), f.name
        for sample in got.samples:
            labels = set(sample.labels) - {"le"}  # a histogram's buckets
            if "<series labels>" in f.labels:
                assert labels == {"pod", *f.labels[1:]}, f.name
            else:
                assert labels == set(f.labels), f.name
