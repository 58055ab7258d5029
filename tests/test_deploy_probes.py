"""The Kubernetes probes agree with the daemon's training timeout and with what deploy/README.md and the manifests'
comments say about them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from promcast.daemon.settings import load_settings

from .support.deploy import DEPLOY, yaml_docs

K8S = DEPLOY / "kubernetes"
MANIFESTS = [K8S / "deployment.yaml", K8S / "statefulset" / "statefulset.yaml"]


def _container(path: Path) -> dict[str, Any]:
    (doc,) = [d for d in yaml_docs(path) if d["kind"] in ("Deployment", "StatefulSet")]
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _train_timeout(tmp_path: Path) -> float:
    (configmap,) = [d for d in yaml_docs(K8S / "configmap.yaml") if d["kind"] == "ConfigMap"]
    config = tmp_path / "promcast.yaml"
    config.write_text(configmap["data"]["promcast.yaml"])
    return load_settings(config).train_timeout_seconds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_the_startup_probe_allows_the_first_training_and_the_text_gives_its_numbers(path: Path, tmp_path: Path) -> None:
    container = _container(path)
    startup, liveness = container["startupProbe"], container["livenessProbe"]
    assert startup["httpGet"]["path"] == liveness["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    allowed = startup["periodSeconds"] * startup["failureThreshold"]
    timeout = _train_timeout(tmp_path)
    # /healthz stays 200 through a first training within its timeout: the probe allows the timeout and a minute.
    assert timeout < allowed <= timeout + 60, (allowed, timeout)
    readme = " ".join((DEPLOY / "README.md").read_text().split())
    stated = re.findall(r"The startup probe allows (\d+) minutes \((\d+) × (\d+) s\)", readme)
    assert stated == [(f"{allowed / 60:g}", str(startup["failureThreshold"]), str(startup["periodSeconds"]))]
    assert f"`train_timeout_seconds` ({timeout:g} s)" in readme
    restarts = re.findall(r"Liveness restarts the container after (\d+) failures (\d+) s apart", readme)
    assert restarts == [(str(liveness["failureThreshold"]), str(liveness["periodSeconds"]))]
    comment = " ".join(line.strip().lstrip("#") for line in path.read_text().splitlines() if "#" in line)
    assert f"allows {allowed / 60:g} minutes" in comment
