"""A `current` that does not load: the daemon serves the newest older version that does (logged, counted, exposed),
never trains over a `current` that is no link, and `promcast models rollback|list` skip and mark such versions.
The NumPy runtime hands a refused artifact to torch only when the target's torch_fallback says so."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from promcast.daemon.app import Daemon
from promcast.daemon.cli import main
from promcast.daemon.http.metrics import Metrics
from promcast.daemon.models.serving import ModelHolder
from promcast.daemon.models.store import ModelStore, StoreError
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.forecaster import Forecaster, TrainConfig
from promcast.forecaster.artifact import WEIGHTS_FILE, read_artifact, write_artifact
from promcast.forecaster.synthetic import make_workload

from .support.http import samples

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

WINDOW, STEP = 8, timedelta(minutes=1)
TARGET = TargetSettings(
    name="demo", query=DEMO_QUERY, step_seconds=60, window=WINDOW, history=timedelta(hours=2), model="mlp", epochs=1
)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    series = make_workload("diurnal", 300, STEP, 0)
    tiny = TrainConfig(epochs=1, max_batches=2, progress=False)
    f = Forecaster("mlp", window=WINDOW, step=STEP, training=tiny, hidden=4, members=1).fit(series)
    return f.save(tmp_path_factory.mktemp("good") / "mlp")


def put(store: ModelStore, artifact: Path, version: str) -> str:
    shutil.copytree(artifact, store.versions_dir / version)
    return version


def truncate_weights(store: ModelStore, version: str) -> None:
    weights = store.versions_dir / version / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])


def legacy(store: ModelStore, artifact: Path, version: str) -> str:
    """An artifact written before the mlp's `norm` field existed: the NumPy runtime refuses it, torch fills it."""
    arrays, meta = read_artifact(artifact)
    del meta["model"]["hparams"]["norm"]
    write_artifact(store.versions_dir / version, arrays, meta)
    return version


def daemon_on(tmp_path: Path, target: TargetSettings = TARGET) -> tuple[Daemon, ModelStore]:
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models")
    daemon = Daemon(settings, DemoSource(DemoSettings(speed=60.0), target.step), [target], model_poll_seconds=3600)
    return daemon, ModelStore(settings.model_dir, target.name)


def gauge(daemon: Daemon, name: str, **labels: str) -> float:
    page = daemon.metrics.exposition().decode()
    return {tuple(sorted(k.items())): v for k, v in samples(page, name)}[tuple(sorted(labels.items()))]


def events(logs: list[dict], name: str) -> list[dict]:
    return [e for e in logs if e["event"] == name]


def test_a_corrupt_current_at_start_up_serves_the_newest_older_version_that_loads(good: Path, tmp_path: Path) -> None:
    daemon, store = daemon_on(tmp_path)
    v1, v2, v3, v4 = (put(store, good, f"2024010{i}T000000000000Z") for i in range(1, 5))
    truncate_weights(store, v3)
    store.promote(v3)  # v4 is newer than current: rolled back from, never a fallback
    with capture_logs() as logs:
        result = daemon.run_once()[0]
    assert result.ok, result.error
    assert result.version == v2, result.error
    ((info, _),) = samples(daemon.metrics.exposition().decode(), "promcast_model_info")
    assert info["version"] == v2
    assert gauge(daemon, "promcast_model_fallback", target="demo") == 1.0
    assert gauge(daemon, "promcast_errors_total", target="demo", stage="model") == 1.0
    (refused,) = events(logs, "model_refused")
    assert refused["version"] == v3
    assert WEIGHTS_FILE in refused["error"]
    (fallback,) = events(logs, "model_fallback")
    assert fallback["version"] == v2
    assert fallback["current"] == v3
    assert fallback["cause"] == refused["error"]

    daemon.reload_models(only_changed=True)  # the poll does not retry the version it passed over
    assert gauge(daemon, "promcast_model_swaps_total", target="demo", result="rejected") == 0.0
    store.promote(v4)
    daemon.reload_models(only_changed=True)
    served = daemon.holders["demo"].get()
    assert served is not None
    assert served.version == v4
    assert gauge(daemon, "promcast_model_fallback", target="demo") == 0.0
    assert v1 in store.versions()


def test_a_current_that_is_no_link_is_reported_and_never_trained_over(good: Path, tmp_path: Path) -> None:
    daemon, store = daemon_on(tmp_path)
    store.current_link.parent.mkdir(parents=True)
    store.current_link.mkdir()  # a folder where the link belongs, as a careless copy leaves it
    with pytest.raises(StoreError, match="not a readable symlink"):
        store.current_version()
    with capture_logs() as logs:
        result = daemon.run_once()[0]
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("no model: cannot load the current model: StoreError")
    assert "not a readable symlink" in result.error
    assert store.versions() == [], "nothing was trained over the broken current"
    (unavailable,) = events(logs, "model_unavailable")
    assert "not a readable symlink" in unavailable["error"]

    v1 = put(store, good, "20240101T000000000000Z")  # a version appears: the next cycle falls back to it
    with capture_logs() as logs:
        result = daemon.run_once()[0]
    assert result.ok
    assert result.version == v1
    assert store.versions() == [v1]
    assert gauge(daemon, "promcast_model_fallback", target="demo") == 1.0
    (refused,) = events(logs, "model_refused")
    assert refused["version"] == "current"
    assert "not a readable symlink" in refused["error"]
    with pytest.raises(StoreError, match="is a folder"):
        store.promote(v1)  # never replaced unseen: a person moves it away
    daemon.reload_models()  # SIGHUP: says why it did not reload, keeps serving
    assert daemon.holders["demo"].get().version == v1  # type: ignore[union-attr]


def test_current_version_tells_no_link_from_a_broken_one(good: Path, tmp_path: Path) -> None:
    store = ModelStore(tmp_path, "t")
    assert store.current_version() is None
    assert not store.has_current()
    store.dir.mkdir()
    store.current_link.write_text("v1")  # a file, not a link
    with pytest.raises(StoreError, match="not a readable symlink"):
        store.current_version()
    store.current_link.unlink()
    os.symlink("versions/gone", store.current_link)  # dangling: names a version, which then fails to load
    assert store.current_version() == "gone"
    assert store.has_current()


def write_config(tmp_path: Path) -> list[str]:
    path = tmp_path / "promcast.yaml"
    path.write_text(json.dumps({"targets": [TARGET.model_dump(mode="json")], "model_dir": str(tmp_path / "models")}))
    return ["--target", "demo", "--config", str(path)]


def test_rollback_skips_versions_that_do_not_load_and_list_marks_them(good: Path, tmp_path: Path, capsys) -> None:
    args = write_config(tmp_path)
    store = ModelStore(tmp_path / "models", "demo")
    v1, v2, v3 = (put(store, good, f"2024010{i}T000000000000Z") for i in range(1, 4))
    truncate_weights(store, v2)
    store.promote(v3)
    assert main(["models", "list", *args, "--json"]) == 0
    rows = {r["version"]: r for r in json.loads(capsys.readouterr().out)}
    assert [rows[v]["loads"] for v in (v1, v2, v3)] == [True, False, True]
    assert WEIGHTS_FILE in rows[v2]["error"]
    assert rows[v1]["error"] is None
    assert main(["models", "list", *args]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in table if v2 in line] == ["!", "!"]  # its row, and the line with its cause
    assert main(["models", "rollback", *args]) == 0
    out = capsys.readouterr().out
    assert f"skipped {v2}:" in out
    assert f"{v3} -> {v1}" in out
    assert store.current_version() == v1
    assert main(["models", "rollback", *args]) == 1  # nothing older than v1
    assert main(["models", "rollback", *args, "--to", v2]) == 1
    assert store.current_version() == v1


@pytest.mark.parametrize("torch_fallback", [False, True])
def test_an_artifact_the_numpy_runtime_refuses_loads_through_torch_only_with_torch_fallback(
    good: Path, tmp_path: Path, torch_fallback: bool
) -> None:
    target = TARGET.model_copy(update={"torch_fallback": torch_fallback})
    store = ModelStore(tmp_path / "models", "demo")
    older = put(store, good, "20240101T000000000000Z")
    old_format = legacy(store, good, "20240102T000000000000Z")
    store.promote(old_format)
    metrics = Metrics(CollectorRegistry(), ["demo"])
    with capture_logs() as logs:
        served = ModelHolder(store, target).load_serving(metrics)
    reason = "the NumPy mlp reads"
    if torch_fallback:  # served through torch, with a warning that gives the NumPy runtime's reason
        assert served.version == old_format
        assert served.forecaster.runtime == "torch"
        (warning,) = events(logs, "torch_fallback")
        assert warning["log_level"] == "warning"
        assert reason in warning["reason"]
        assert warning["version"] == old_format
        assert not events(logs, "model_refused")
    else:  # refused with that reason; the older version serves
        assert served.version == older
        assert served.forecaster.runtime == "numpy"
        (refused,) = events(logs, "model_refused")
        assert refused["version"] == old_format
        assert reason in refused["error"]
        assert "torch_fallback" in refused["error"]
        assert not events(logs, "torch_fallback")
