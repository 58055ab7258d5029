"""Sharding: the stable hash, the shard settings, the StatefulSet variant, and three real daemons splitting
300 series served by one real Prometheus so that each series is forecast exactly once."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from promcast.daemon.cli import main as cli_main
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import ConfigError, load_settings, ordinal_of, resolve_index
from promcast.daemon.sources.sharding import Shard, shard_for, shard_of
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster
from promcast.forecaster.forecaster import default_training

from .support.deploy import DEPLOY, require_module, require_tool, yaml_docs
from .support.http import fetch, samples, wait_until
from .support.prometheus_server import PrometheusServer, backfill, free_port, require_prometheus, write_openmetrics

K8S = DEPLOY / "kubernetes"
STS = K8S / "statefulset"
RULES = STS / "shard-rules.yml"
K8S_VERSION = "1.37.0"  # as tests/test_deploy.py
CRDS = {"monitoring.coreos.com/v1"}


def _keys(n: int) -> list[SeriesKey]:
    return [(("instance", f"host-{i}"), ("job", "node")) for i in range(n)]


# ---- the hash and the settings ---------------------------------------------------------------------------------


def test_shard_of_is_a_stable_hash_not_pythons_salted_hash() -> None:
    # Fixed values: a change of the hash would move every series to another replica on upgrade.
    assert shard_of((("instance", "a"),), 3) == 1
    assert shard_of((("instance", "a"),), 1_000_003) == 719521
    assert shard_of((("instance", "b"), ("job", "x")), 3) == 0
    assert shard_of((), 3) == 2
    code = "from promcast.daemon.sources.sharding import shard_of; print(shard_of((('instance', 'a'),), 1_000_003))"
    for seed in ("1", "2"):  # another process with another hash seed agrees
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "719521"


def test_shards_partition_the_series_evenly() -> None:
    keys = _keys(3000)
    data = dict.fromkeys(keys, 0)
    parts = [Shard(i, 3).select(data) for i in range(3)]
    assert Counter(k for p in parts for k in p) == Counter(keys)  # each series in exactly one shard
    assert all(850 <= len(p) <= 1150 for p in parts), [len(p) for p in parts]
    assert Shard().select(data) == data
    assert all(Shard().owns(k) for k in keys)


@pytest.mark.parametrize(
    ("name", "ordinal"),
    [
        ("promcast-0", 0),
        ("promcast-12", 12),
        ("my-forecaster-3", 3),
        ("Promcast-2\n", 2),
        ("promcast", None),
        ("promcast-01", None),  # a StatefulSet never pads ordinals
        ("promcast-7d9f8b6c4-x2b9q", None),  # a Deployment's pod
        ("-3", None),
        ("", None),
        (None, None),
    ],
)
def test_ordinal_of_pod_names(name: str | None, ordinal: int | None) -> None:
    assert ordinal_of(name) == ordinal


def test_resolve_index() -> None:
    assert resolve_index(None, 1, "promcast-7d9f8b6c4-24567") == 0  # one shard: the host name is never read
    assert resolve_index(None, 3, "promcast-2") == 2
    assert resolve_index(1, 3, "promcast-2") == 1  # explicit wins
    with pytest.raises(ValueError, match="does not end in -<ordinal>"):
        resolve_index(None, 3, "laptop")
    with pytest.raises(ValueError, match=r"shard_index 3 \(from the host name 'promcast-3'\)"):
        resolve_index(None, 3, "promcast-3")
    with pytest.raises(ValueError, match="0 <= shard_index < shard_count = 2"):
        Shard(2, 2)


def _settings(monkeypatch: pytest.MonkeyPatch, hostname: str | None, **env: str) -> Any:
    monkeypatch.delenv("HOSTNAME", raising=False)
    if hostname is not None:
        monkeypatch.setenv("HOSTNAME", hostname)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_settings_default_from_the_statefulset_ordinal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert shard_for(_settings(monkeypatch, None)) == Shard(0, 1)
    assert shard_for(_settings(monkeypatch, "promcast-7d9f8b6c4-x2b9q")) == Shard(0, 1)
    assert shard_for(_settings(monkeypatch, "promcast-2", PROMCAST_SHARD_COUNT="3")) == Shard(2, 3)
    s = _settings(monkeypatch, "promcast-2", PROMCAST_SHARD_COUNT="3", PROMCAST_SHARD_INDEX="0")
    assert shard_for(s) == Shard(0, 3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROMCAST_SHARD_COUNT": "3", "PROMCAST_SHARD_INDEX": "3"}, "0 <= shard_index < shard_count = 3"),
        ({"PROMCAST_SHARD_INDEX": "1"}, "0 <= shard_index < shard_count = 1"),
        ({"PROMCAST_SHARD_COUNT": "0"}, "shard_count"),
        ({"PROMCAST_SHARD_INDEX": "-1"}, "shard_index"),
        ({"PROMCAST_SHARD_COUNT": "3"}, "does not end in -<ordinal>"),
    ],
)
def test_bad_shards_are_refused_at_start_with_exit_code_2(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=message):
        _settings(monkeypatch, "laptop", **env)
    assert cli_main(["run", "--once", "--target", "x=up"]) == 2
    assert message in capsys.readouterr().err


# ---- the StatefulSet variant -----------------------------------------------------------------------------------


def _one(path: Path, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in yaml_docs(path) if d["kind"] == kind]
    return doc


def test_statefulset_manifests_validate_against_the_kubernetes_schemas() -> None:
    kv = require_module("kubernetes_validate", "pip install kubernetes-validate (requirements.lock)")
    checked = []
    for path in sorted(STS.glob("*.yaml")):
        for doc in yaml_docs(path):
            if path.name == "kustomization.yaml" or doc["apiVersion"] in CRDS:
                continue
            try:
                kv.validate(doc, K8S_VERSION, strict=True)
            except kv.ValidationError as exc:
                pytest.fail(f"{path.name} {doc['kind']}: {exc}")
            checked.append(doc["kind"])
    assert sorted(checked) == ["CronJob", "PersistentVolumeClaim", "Service", "StatefulSet"]
    kust = yaml_docs(STS / "kustomization.yaml")[0]
    assert set(kust["resources"]) == {p.name for p in STS.glob("*.yaml")} - {"kustomization.yaml"}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_statefulset_and_indexed_retrain_agree_on_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sts = _one(STS / "statefulset.yaml", "StatefulSet")
    headless = _one(STS / "service-headless.yaml", "Service")
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    base_service = _one(K8S / "service.yaml", "Service")  # the ServiceMonitor's Service scrapes every replica
    assert base_service["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    job = _one(STS / "train-cronjob.yaml", "CronJob")["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == sts["spec"]["replicas"]
    (daemon,) = sts["spec"]["template"]["spec"]["containers"]
    (train,) = job["template"]["spec"]["containers"]
    index_from = {
        "daemon": "metadata.labels['apps.kubernetes.io/pod-index']",
        "train": "metadata.annotations['batch.kubernetes.io/job-completion-index']",
    }
    config = _one(K8S / "configmap.yaml", "ConfigMap")["data"]["promcast.yaml"]
    (tmp_path / "promcast.yaml").write_text(config)
    for role, container in (("daemon", daemon), ("train", train)):
        env = _env(container)
        assert env["PROMCAST_SHARD_INDEX"]["fieldRef"]["fieldPath"] == index_from[role]
        assert env["PROMCAST_SHARD_COUNT"] == str(sts["spec"]["replicas"])
        (models,) = [m for m in container["volumeMounts"] if m["name"] == "models"]
        assert models["subPathExpr"] == "shard-$(PROMCAST_SHARD_INDEX)"  # each shard its own model store
        monkeypatch.setenv("PROMCAST_SHARD_INDEX", "2")
        monkeypatch.setenv("PROMCAST_SHARD_COUNT", env["PROMCAST_SHARD_COUNT"])
        settings = load_settings(tmp_path / "promcast.yaml")
        assert shard_for(settings) == Shard(2, sts["spec"]["replicas"])
    assert train["args"][:3] == ["train", "--target", settings.targets[0].name]


def test_kustomize_copies_the_replica_count_everywhere(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl", "apt-get install kubectl (it builds kustomizations offline)")
    for path in STS.glob("*.y*ml"):
        (tmp_path / path.name).write_text(path.read_text().replace("replicas: 3", "replicas: 5"))
    out = subprocess.run([kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(out) if d}
    assert docs["StatefulSet"]["spec"]["replicas"] == 5
    assert docs["CronJob"]["spec"]["jobTemplate"]["spec"]["completions"] == 5
    (daemon,) = docs["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    (train,) = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert _env(daemon)["PROMCAST_SHARD_COUNT"] == _env(train)["PROMCAST_SHARD_COUNT"] == "5"


def test_shard_rules_pass_promtool_and_match_the_prometheus_rule() -> None:
    promtool = require_prometheus().promtool
    for args in (["check", "rules", RULES.name], ["test", "rules", RULES.with_suffix(".test.yml").name]):
        proc = subprocess.run([promtool, *args], cwd=STS, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    resource = _one(STS / "prometheusrule-shards.yaml", "PrometheusRule")
    assert resource["spec"]["groups"] == yaml_docs(RULES)[0]["groups"]


# ---- three real daemons, one real Prometheus -------------------------------------------------------------------

N_SERIES, WINDOW, HOURS = 300, 24, 3


def _backfill(tmp: Path) -> pd.Series:
    """300 series of `shardtest` (instance s000..s299), one-minute steps; returns the first one."""
    end = pd.Timestamp.now(tz="UTC").floor("1min") - pd.Timedelta(minutes=1)
    ts = pd.date_range(end=end, periods=HOURS * 60, freq="1min")
    base = 50 + 10 * np.sin(np.arange(len(ts)) * 2 * np.pi / 60)
    rows = [("shardtest", {"instance": f"s{i:03d}"}, ts, base * (1 + i / 100) + i) for i in range(N_SERIES)]
    write_openmetrics(tmp / "history.om", rows)
    backfill(tmp / "history.om", tmp / "tsdb")
    return pd.Series(rows[0][3], index=ts)


def _model(series: pd.Series) -> Forecaster:
    training = dataclasses.replace(default_training("mlp"), epochs=2, progress=False)
    f = Forecaster("mlp", window=WINDOW, step=timedelta(minutes=1), training=training)
    return f.fit(series)


@contextmanager
def _daemon(tmp: Path, prom_url: str, port: int, index: int, count: int, f: Forecaster) -> Iterator[Path]:
    name = f"shard{index}of{count}"
    ModelStore(tmp / name / "models", "load").publish(f)  # pre-trained: no training at start
    target = {"name": "load", "query": "shardtest", "interval_seconds": 2, "window": WINDOW, "history": "PT3H"}
    config = {
        "prometheus": {"url": prom_url, "timeout_seconds": 5, "retries": 0},
        "targets": [target],
        "listen": f"127.0.0.1:{port}",
        "model_dir": str(tmp / name / "models"),
        "log_format": "json",
        "shard_index": index,
        "shard_count": count,
    }
    (tmp / f"{name}.yaml").write_text(json.dumps(config))  # JSON is YAML
    log = tmp / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if k != "HOSTNAME" and not k.startswith("PROMCAST_")}
    with log.open("w") as out:
        cmd = [sys.executable, "-m", "promcast", "run", "--config", str(tmp / f"{name}.yaml")]
        proc = subprocess.Popen(cmd, stderr=out, env=env, text=True)
        try:
            yield log
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _ready(port: int) -> bool:
    try:
        return fetch(f"http://127.0.0.1:{port}/readyz")[0] == 200
    except OSError:
        return False


def test_three_shards_publish_every_series_exactly_once(tmp_path: Path) -> None:
    require_prometheus()
    f = _model(_backfill(tmp_path))
    ports = [free_port() for _ in range(4)]
    with ExitStack() as stack:
        prom = stack.enter_context(
            PrometheusServer(
                tmp_path / "prom", tsdb_dir=tmp_path / "tsdb", scrape_targets=[f"127.0.0.1:{p}" for p in ports]
            )
        )
        logs = [stack.enter_context(_daemon(tmp_path, prom.url, ports[i], i, 3, f)) for i in range(3)]
        # A fourth replica configured for four shards: Prometheus's alert rule must flag it.
        logs.append(stack.enter_context(_daemon(tmp_path, prom.url, ports[3], 3, 4, f)))
        wait_until(lambda: all(_ready(p) for p in ports), timeout=90, every=0.5)
        owners: Counter[str] = Counter()
        for index, port in enumerate(ports[:3]):
            text = fetch(f"http://127.0.0.1:{port}/metrics")[1]
            mine = {labels["instance"] for labels, _ in samples(text, "promcast_forecast") if labels["h"] == "1"}
            owners.update(mine)
            assert mine == {dict(k)["instance"] for k in _keys_of_shard(index, 3)}
            assert samples(text, "promcast_shard_info") == [({"shard_index": str(index), "shard_count": "3"}, 1.0)]
            assert samples(text, "promcast_shard_series") == [({"target": "load"}, float(len(mine)))]
            errors = {lab["stage"]: v for lab, v in samples(text, "promcast_errors_total")}
            assert errors["input"] == errors["vanished"] == 0  # other shards' series are no errors
        assert sorted(owners) == [f"s{i:03d}" for i in range(N_SERIES)]
        assert set(owners.values()) == {1}
        _assert_mismatch_flagged(prom, logs[3])


def _keys_of_shard(index: int, count: int) -> list[SeriesKey]:
    return [k for k in ((("instance", f"s{i:03d}"),) for i in range(N_SERIES)) if shard_of(k, count) == index]


def _assert_mismatch_flagged(prom: PrometheusServer, fourth_log: Path) -> None:
    (rule,) = yaml_docs(RULES)[0]["groups"][0]["rules"]
    (alert,) = prom.wait_for(rule["expr"], timeout=30)
    assert alert["metric"] == {"job": prom.job_name}
    started = [json.loads(line) for line in fourth_log.read_text().splitlines() if '"started"' in line]
    assert started
    assert started[0]["shard_index"] == 3
    assert started[0]["shard_count"] == 4
