"""The wheel and the sdist as a user gets them: built from the repository, installed into fresh virtual environments
outside it (on the lowest and the highest Python the project declares, and at the dependency floors), and run there.

The installs reach the package index; each builds its environment once per module, so the whole file costs a few
minutes. Outside CI a missing interpreter skips its case with the reason; in CI it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from promcast import __version__

from .support.deploy import in_ci

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FLOORS = ROOT / "requirements-floors.txt"
pytestmark = pytest.mark.slow


def _python(version: str) -> str:
    """An interpreter of ``version`` ("3.13"): on PATH, else in pyenv's versions; skip (fail in CI) without one."""
    if sys.version_info[:2] == tuple(int(p) for p in version.split(".")):
        return sys.executable
    found = shutil.which(f"python{version}")
    if found is not None and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
        return found
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv.glob(f"{version}*/bin/python{version}"), reverse=True):
        return str(candidate)
    reason = f"no Python {version} on PATH or in pyenv; install it to test the wheel there"
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def _declared() -> list[str]:
    """The Python versions the classifiers declare, lowest and highest."""
    prefix = "Programming Language :: Python :: 3."
    minors = sorted(int(c[len(prefix) :]) for c in PYPROJECT["project"]["classifiers"] if c.startswith(prefix))
    return [f"3.{minors[0]}", f"3.{minors[-1]}"]


def _series(path: Path) -> Path:
    """400 minutes of a 7-minute cycle, as timestamp,value."""
    start = datetime(2026, 1, 1)
    rows = (f"{(start + timedelta(minutes=i)).isoformat()},{10 + i % 7}\n" for i in range(400))
    path.write_text("timestamp,value\n" + "".join(rows))
    return path


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{cmd}: exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The sdist and the wheel ``python -m build`` makes (the wheel from the sdist), and what it printed."""
    out = tmp_path_factory.mktemp("dist")
    built = _run(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=ROOT)
    (sdist,), (wheel,) = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    return sdist, wheel, built.stdout + built.stderr


def _venv(python: str, where: Path, wheel: Path, *extra: str) -> Path:
    """A fresh virtual environment at ``where`` with the wheel installed; its bin folder."""
    _run(python, "-m", "venv", where, cwd=where.parent)
    pip = [where / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run(*pip, wheel, *extra, cwd=where.parent)
    return where / "bin"


@pytest.fixture(scope="module", params=["lowest", "highest"])
def serving(request: pytest.FixtureRequest, dist: tuple[Path, Path, str], tmp_path_factory) -> Iterator[Path]:
    """A serving install (no extras) on the lowest and on the highest declared Python."""
    python = _python(_declared()[0 if request.param == "lowest" else 1])
    yield _venv(python, tmp_path_factory.mktemp(f"venv-{request.param}") / "venv", dist[1])


def test_the_build_prints_no_deprecation(dist: tuple[Path, Path, str]) -> None:
    assert "deprecat" not in dist[2].lower(), dist[2]


def test_the_wheel_installs_promcast_alone(dist: tuple[Path, Path, str]) -> None:
    names = zipfile.ZipFile(dist[1]).namelist()
    assert {n.split("/")[0] for n in names} == {"promcast", f"promcast-{__version__}.dist-info"}
    assert "promcast/deploy/grafana/promcast-dashboard.json" in names
    assert "promcast/forecaster/pretrained/MODEL_CARD.md" in names
    assert f"promcast-{__version__}.dist-info/licenses/LICENSE" in names
    assert not [n for n in names if "localprom" in n or "/tests/" in n]


def test_the_sdist_carries_its_tests(dist: tuple[Path, Path, str], tmp_path: Path) -> None:
    """Unpacked, the sdist has the suite's support code and fixtures, and tests run from it."""
    with tarfile.open(dist[0]) as tar:
        tar.extractall(tmp_path, filter="data")
    (top,) = tmp_path.iterdir()
    for needed in ("tests/conftest.py", "tests/support/deploy.py", "tests/fixtures/mlp_v1/meta.json", "LICENSE"):
        assert (top / needed).is_file(), needed
    env = {**os.environ, "PYTHONPATH": str(top)}
    tests = ["tests/test_artifact_migration.py", "tests/test_windows.py", "tests/test_clock.py"]
    _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, cwd=top, env=env)


def test_a_serving_install_runs_every_serving_command(serving: Path, tmp_path: Path) -> None:
    """Outside the repository, with no torch and no matplotlib: the version, the dashboard, a prediction by the
    pretrained model, and one demo cycle."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    promcast = serving / "promcast"
    version = _run(promcast, "--version", cwd=tmp_path, env=env).stdout
    assert version.startswith(f"promcast {__version__} ")
    missing = subprocess.run([serving / "python", "-c", "import torch"], capture_output=True, cwd=tmp_path, env=env)
    assert missing.returncode != 0  # a serving install has no torch
    dashboard = json.loads(_run(promcast, "dashboard", "--horizon", "24", cwd=tmp_path, env=env).stdout)
    assert dashboard["panels"]
    csv = _series(tmp_path / "load.csv")
    predict = _run(promcast, "predict", "--model", "pretrained", "--input", csv, "--json", cwd=tmp_path, env=env)
    forecast = json.loads(predict.stdout)
    assert len(forecast["forecast"]) == 12
    demo = _run(promcast, "demo", "--once", "--model-dir", tmp_path / "models", cwd=tmp_path, env=env)
    assert "demo" in demo.stdout


def test_promcast_installs_beside_python_daemon(dist: tuple[Path, Path, str], tmp_path: Path) -> None:
    """python-daemon owns the top-level name ``daemon``: both install into one environment and both import."""
    bin_ = _venv(_python(_declared()[0]), tmp_path / "venv", dist[1], "python-daemon")
    code = "from daemon import DaemonContext; import promcast.daemon.cli, promcast.forecaster; print('ok')"
    assert _run(bin_ / "python", "-c", code, cwd=tmp_path).stdout.strip() == "ok"


def test_the_dependency_floors_install_and_run_without_warnings(dist: tuple[Path, Path, str], tmp_path: Path) -> None:
    """Every runtime dependency at the floor pyproject.toml declares (requirements-floors.txt pins them)."""
    floors = dict(line.split("==") for line in FLOORS.read_text().split() if "==" in line)
    declared = {d.split(">=")[0].lower(): d.split(">=")[1].split(",")[0] for d in PYPROJECT["project"]["dependencies"]}
    assert {k.lower(): v for k, v in floors.items() if k.lower() in declared} == declared
    bin_ = _venv(_python(_declared()[0]), tmp_path / "venv", dist[1], "-c", str(FLOORS))
    out = _run(bin_ / "promcast", "--version", cwd=tmp_path)
    assert out.stderr == ""
    csv = _series(tmp_path / "load.csv")
    out = _run(bin_ / "promcast", "predict", "--model", "pretrained", "--input", csv, cwd=tmp_path)
    assert "warning" not in out.stderr.lower(), out.stderr
