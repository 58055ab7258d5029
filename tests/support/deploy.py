"""Test support for deploy/: locating the validation tools (skip outside CI, fail in CI) and reading the files."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEPLOY", "in_ci", "require_tool", "yaml_docs"]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_tool(name: str, install: str) -> str:
    """The path of executable ``name`` (on PATH or beside the interpreter, i.e. in the venv).

    Missing: ``pytest.skip`` naming ``install``, or ``pytest.fail`` in CI, where scripts/bootstrap installs it.
    """
    import pytest

    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is not None:
        return path
    reason = f"{name} not found; install it with: {install}"
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def require_module(name: str, install: str) -> Any:
    """The imported module ``name``; missing: ``pytest.skip`` naming ``install``, or ``pytest.fail`` in CI."""
    import importlib

    import pytest

    try:
        return importlib.import_module(name)
    except ImportError:
        reason = f"python module {name} not found; install it with: {install}"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    """Every document of a YAML file, empty ones dropped."""
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d]
