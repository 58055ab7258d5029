"""The layout README's "Layout" section describes: the core stands alone, the daemon's modules form no import
circle, benchmarks stand on the product, and each concept's table is the one its readers use."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (lazy and TYPE_CHECKING imports too), made absolute."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            name = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(name)
            # ``from . import x`` and ``from .pkg import mod`` name modules too
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def _modules(package: str) -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / package).rglob("*.py")}


def _graph(package: str) -> dict[str, set[str]]:
    mods = _modules(package)
    return {m: {i for i in _imports(p, package) if i in mods and i != m} for m, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, or None."""
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*path[path.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_core_imports_nothing_from_the_daemon() -> None:
    for module, path in _modules("forecaster").items():
        bad = sorted(i for i in _imports(path, "forecaster") if i.split(".")[0] in ("daemon", "tests", "benchmarks"))
        assert not bad, f"{module} imports {bad}"


def test_the_daemon_modules_form_no_import_circle() -> None:
    graph = _graph("daemon")
    assert "daemon.settings" in graph and graph["daemon.job"], "the scan sees the daemon's imports"
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_benchmarks_stand_on_the_product() -> None:
    for module, path in _modules("benchmarks").items():
        bad = sorted(i for i in _imports(path, "benchmarks") if i.split(".")[0] == "tests")
        assert not bad, f"{module} imports {bad}"


def test_every_source_setting_has_its_builder() -> None:
    from daemon.settings import Settings
    from daemon.sources import SOURCES

    assert set(typing.get_args(Settings.model_fields["source"].annotation)) == set(SOURCES)


def test_the_daemon_stands_on_the_core_not_on_its_evaluation() -> None:
    for module, path in _modules("daemon").items():
        bad = sorted(
            i for i in _imports(path, "daemon") if i.startswith("forecaster.evaluation") and module != "daemon.cli"
        )
        assert not bad, f"{module} imports {bad}"
