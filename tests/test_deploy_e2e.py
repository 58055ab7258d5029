"""deploy/ against a live stack: every dashboard query, recording rule and the autoscaling signal return data
from a real Prometheus that scrapes a real daemon with the recommended scrape settings and loads our rules."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support.deploy import DEPLOY, yaml_docs
from .support.e2e import Stack, running_stack
from .support.http import fetch, samples

pytestmark = pytest.mark.prometheus

RULES = DEPLOY / "prometheus" / "promcast-rules.yml"
DASHBOARD = json.loads((DEPLOY / "grafana" / "promcast-dashboard.json").read_text())
# The quality panels show data once a forecast has been scored against the value one 1-minute step after its
# origin. The backfill ends at the stack's start, but Prometheus answers range queries with the last sample for
# its 5-minute lookback, so the first forecasts are scored within a minute or two of the start.
SCORED = 180.0
# Dashboard variables made concrete for the stack (target cpu, query workload_cpu, job promcast). The stack has
# run for seconds only, so the offset for "h steps earlier" is shortened; the query's shape is the same.
VALUES = {
    ("target", None): "cpu",
    ("job", None): "promcast",
    ("h", None): "10s",
    ("h", "text"): "1",
    ("actual", None): "workload_cpu",
    ("__rate_interval", None): "30s",
    ("cycle_window", None): "30s",
    ("__range", None): "5m",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared end-to-end stack, its Prometheus restarted as deploy/ recommends: job promcast, honor_labels,
    and our rule file loaded."""
    with running_stack(tmp_path_factory.mktemp("deploy")) as s:
        prom = s.prometheus
        write_config = prom.write_config

        def with_rules() -> Path:
            path = write_config()
            config = json.loads(path.read_text())
            config["global"]["evaluation_interval"] = "1s"
            config["rule_files"] = [str(RULES)]
            config["scrape_configs"][0]["honor_labels"] = True
            path.write_text(json.dumps(config))
            return path

        prom.job_name = "promcast"
        prom.write_config = with_rules  # type: ignore[method-assign]
        prom.restart()
        prom.wait_for('promcast_forecast{instance="a"}', timeout=60)
        yield s


def _substitute(expr: str) -> str:
    def value(m: re.Match[str]) -> str:
        return VALUES[(m.group(1) or m.group(3), m.group(2))]

    return re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", value, expr)


def _dashboard_queries() -> list[Any]:
    params = []
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            case = (panel["title"], target["expr"])
            params.append(pytest.param(*case, id=f"{panel['title']} [{target['refId']}]"))
    return params


@pytest.mark.parametrize(("title", "expr"), _dashboard_queries())
def test_dashboard_query_returns_data(stack: Stack, title: str, expr: str) -> None:
    assert stack.prometheus.wait_for(_substitute(expr), timeout=SCORED), title


def test_dashboard_variables_list_the_target_and_job(stack: Stack) -> None:
    for var in DASHBOARD["templating"]["list"]:
        m = re.fullmatch(r"label_values\((\w+), (\w+)\)", var.get("definition", ""))
        if m:
            got = {r["metric"].get(m.group(2)) for r in stack.prometheus.wait_for(m.group(1))}
            assert VALUES[(var["name"], None)] in got, var["name"]


def test_honor_labels_keeps_the_forecast_series_labels(stack: Stack) -> None:
    # Series scraped before the restart under the first job stay queryable for Prometheus's 5-minute
    # lookback, so look only at what the honor_labels job scraped.
    got = stack.prometheus.query('promcast_forecast{target="cpu", h="1", job="promcast"}')
    assert {r["metric"]["instance"] for r in got} == {"a", "b"}
    assert not any("exported_instance" in r["metric"] for r in got)


def test_rules_evaluate_without_errors_and_record_data(stack: Stack) -> None:
    for rule in (r for g in yaml_docs(RULES)[0]["groups"] for r in g["rules"] if "record" in r):
        assert stack.prometheus.wait_for(rule["record"], timeout=30), rule["record"]
    groups = json.loads(fetch(stack.prometheus.url + "/api/v1/rules")[1])["data"]["groups"]
    bad = {r["name"]: r.get("lastError") for g in groups for r in g["rules"] if r["health"] != "ok"}
    assert not bad


def test_no_alert_on_a_healthy_stack(stack: Stack) -> None:
    assert not stack.prometheus.query('ALERTS{alertname=~"Promcast.+"}')


def test_scaling_signal_returns_the_max_of_actual_and_forecast(stack: Stack) -> None:
    (scaled,) = yaml_docs(DEPLOY / "keda" / "scaledobject.yaml")
    query: str = scaled["spec"]["triggers"][0]["metadata"]["query"]
    (config,) = yaml_docs(DEPLOY / "kubernetes" / "configmap.yaml")
    target = yaml.safe_load(config["data"]["promcast.yaml"])["targets"][0]
    # The recipe's actual part is the target's own query: run it with the stack's target (cpu: workload_cpu).
    assert target["name"] == "cpu"
    assert target["query"] in query
    live = query.replace(target["query"], "workload_cpu")
    (signal,) = stack.prometheus.wait_for(live, timeout=30)
    (actual,) = stack.prometheus.query("sum(workload_cpu)")
    (forecast,) = stack.prometheus.query('target:promcast_forecast:sum_max_over_horizon{target="cpu"}')
    values = [float(r["value"][1]) for r in (signal, actual, forecast)]
    assert values[0] == pytest.approx(max(values[1:]), rel=1e-3)  # evaluated moments apart


def test_every_metric_named_in_deploy_exists(stack: Stack) -> None:
    stack.prometheus.wait_for('promcast_interval_coverage_ratio{target="cpu"}', timeout=SCORED)  # scored once
    exposed = {s.rsplit("{")[0].split()[0] for s in fetch(stack.url + "/metrics")[1].splitlines() if s[:1] != "#"}
    texts = [RULES.read_text(), json.dumps(DASHBOARD), (DEPLOY / "keda" / "scaledobject.yaml").read_text()]
    named = {m for t in texts for m in re.findall(r"(?<![:\w])promcast_[a-z_]+", t)}
    assert named <= exposed, f"named in deploy/ but not exported: {sorted(named - exposed)}"
    assert samples(fetch(stack.url + "/metrics")[1], "promcast_series")
