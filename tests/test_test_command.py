"""What the test command runs: the suite on python3 at requirements.lock, then on the highest Python the project
declares at requirements-highest.lock (scripts/test), that Python found by scripts/highest-python."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
HIGHEST = max(
    (c.rsplit(":: ", 1)[1] for c in PROJECT["classifiers"] if c.startswith("Programming Language :: Python :: 3.")),
    key=lambda v: int(v.split(".")[1]),
)
TOOLS = ("bash", "grep", "tr", "cut", "sort", "tail", "dirname", "env")


def _pins(lock: Path) -> dict[str, str]:
    """A lock file's ``name==version`` lines, the names normalised as pip does."""
    lines = (line.split("==") for line in lock.read_text().splitlines() if "==" in line and not line.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in lines}


def test_the_two_locks_test_both_ends_of_the_torch_range_and_pin_every_dependency() -> None:
    """requirements.lock (the first run) pins torch at the floor of the ``train`` extra; requirements-highest.lock
    (the run on the highest declared Python) pins a newer torch inside the range. Both pin every dependency
    pyproject.toml declares, extras included, so neither run installs an unpinned one."""
    lowest, highest = _pins(ROOT / "requirements.lock"), _pins(ROOT / "requirements-highest.lock")
    declared = [Requirement(d) for d in PROJECT["dependencies"]]
    declared += [Requirement(d) for extra in PROJECT["optional-dependencies"].values() for d in extra]
    for lock in (lowest, highest):
        assert not [r.name for r in declared if r.name.lower().replace("_", "-") not in lock]
        assert not [r.name for r in declared if lock[r.name.lower().replace("_", "-")] not in r.specifier]
    (torch,) = [r for r in declared if r.name == "torch"]
    (floor,) = [s.version for s in torch.specifier if s.operator == ">="]
    assert Version(lowest["torch"]) == Version(floor)
    assert Version(highest["torch"]) > Version(floor)
    assert highest["torch"] in torch.specifier
    assert f"on the highest Python it declares ({HIGHEST})" in (ROOT / "requirements-highest.lock").read_text()


def _fake_python(path: Path, works: bool = True) -> Path:
    """An executable that answers ``--version`` as an interpreter would, or fails as a pyenv shim does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho 'Python {HIGHEST}.9'\n" if works else "#!/bin/sh\nexit 127\n")
    path.chmod(0o755)
    return path


def _find(tmp_path: Path, on_path: Path | None, pyenv: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    """scripts/highest-python with only the shell tools it uses, ``on_path``'s folder, and ``pyenv`` as pyenv."""
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        if not (tools / tool).exists():
            (tools / tool).symlink_to(found)
    path = os.pathsep.join([str(on_path.parent)] if on_path else []) + os.pathsep + str(tools)
    env = {"PATH": path.lstrip(os.pathsep), "PYENV_ROOT": str(pyenv), "HOME": str(tmp_path)}
    if ci is not None:
        env["CI"] = ci
    script = ROOT / "scripts" / "highest-python"
    return subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=30)


def test_the_highest_python_on_path_comes_first(tmp_path: Path) -> None:
    found = _fake_python(tmp_path / "bin" / f"python{HIGHEST}")
    _fake_python(tmp_path / "pyenv" / "versions" / f"{HIGHEST}.1" / "bin" / f"python{HIGHEST}")
    done = _find(tmp_path, found, tmp_path / "pyenv", None)
    assert (done.returncode, done.stdout.strip()) == (0, str(found))


def test_a_pyenv_shim_that_fails_gives_way_to_pyenvs_own_interpreter(tmp_path: Path) -> None:
    shim = _fake_python(tmp_path / "shims" / f"python{HIGHEST}", works=False)
    installed = _fake_python(tmp_path / "pyenv" / "versions" / f"{HIGHEST}.1" / "bin" / f"python{HIGHEST}")
    _fake_python(tmp_path / "pyenv" / "versions" / "3.10.4" / "bin" / "python3.10")  # another minor: not taken
    done = _find(tmp_path, shim, tmp_path / "pyenv", "")
    assert (done.returncode, done.stdout.strip()) == (0, str(installed))


@pytest.mark.parametrize(("ci", "code"), [(None, 0), ("false", 0), ("true", 1), ("1", 1)])
def test_without_the_highest_python_the_second_run_is_skipped_but_fails_in_ci(
    tmp_path: Path, ci: str | None, code: int
) -> None:
    _fake_python(tmp_path / "pyenv" / "versions" / "3.12.1" / "bin" / "python3.12")
    done = _find(tmp_path, None, tmp_path / "pyenv", ci)
    assert (done.returncode, done.stdout) == (code, "")
    assert f"no Python {HIGHEST} on PATH or in pyenv" in done.stderr


def test_the_test_command_runs_the_suite_on_both_pythons() -> None:
    """scripts/test: pytest in .venv, then in .venv-highest made from requirements-highest.lock by the interpreter
    scripts/highest-python names; a command line each, not a comment."""
    lines = [line.strip() for line in (ROOT / "scripts" / "test").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert any(line.startswith(".venv/bin/pytest") for line in commands)
    assert "python=$(scripts/highest-python)" in commands
    assert 'scripts/bootstrap --highest "$python"' in commands
    assert any(line.startswith(".venv-highest/bin/pytest") for line in commands)
    assert "requirements-highest.lock" in (ROOT / "scripts" / "bootstrap").read_text()
