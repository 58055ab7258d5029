"""The layout README's "Layout" section describes: the core stands alone, the daemon's rooms import only the rooms
below them, its modules form no import circle, benchmarks stand on the product, and each concept's table is the one
its readers use."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (lazy and TYPE_CHECKING imports too), made absolute."""
    module = _name(path)
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


def _name(path: Path) -> str:
    """A file's module name as installed; a package's ``__init__.py`` is the package. daemon/ and forecaster/ are
    promcast.daemon and promcast.forecaster."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(("promcast", *parts) if parts[0] in ("daemon", "forecaster") else parts)


def _modules(package: str) -> dict[str, Path]:
    return {_name(p): p for p in (ROOT / package).rglob("*.py")}


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
        bad = sorted(
            i
            for i in _imports(path, "forecaster")
            if i.startswith(("promcast.daemon", "daemon", "tests", "benchmarks"))
        )
        assert not bad, f"{module} imports {bad}"


def test_the_daemon_modules_form_no_import_circle() -> None:
    graph = _graph("daemon")
    assert "promcast.daemon.settings" in graph["promcast.daemon.cycle.job"], "the scan sees the daemon's imports"
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_benchmarks_stand_on_the_product() -> None:
    for module, path in _modules("benchmarks").items():
        bad = sorted(
            i for i in _imports(path, "benchmarks") if i.startswith("tests") and not i.startswith("tests.support")
        )
        assert not bad, f"{module} imports {bad}"


def test_every_source_setting_has_its_builder() -> None:
    from promcast.daemon.settings import Settings
    from promcast.daemon.sources import SOURCES

    assert set(typing.get_args(Settings.model_fields["source"].annotation)) == set(SOURCES)


def test_the_daemon_stands_on_the_core_not_on_its_evaluation() -> None:
    for module, path in _modules("daemon").items():
        bad = sorted(
            i
            for i in _imports(path, "daemon")
            if i.startswith("promcast.forecaster.evaluation")
            and module != "promcast.daemon.cli"
            and _room(module) != "offline"
        )
        assert not bad, f"{module} imports {bad}"


# The daemon's rooms, bottom up: each may import its own modules and the rooms listed for it, nothing above.
ROOMS: dict[str, set[str]] = {
    "base": set(),  # types, clock, logs, build: what every room shares
    "settings": {"base"},
    "sources": {"base", "settings"},
    "http": {"base", "settings"},
    "models": {"base", "settings", "sources", "http"},
    "cycle": {"base", "settings", "sources", "http", "models"},
    "sinks": {"base", "settings", "http"},  # where forecasts go besides /metrics
    "offline": {"base", "settings", "sources", "models", "cycle"},
    "app": {"base", "settings", "sources", "http", "models", "cycle", "offline", "sinks"},  # app, health, cli, __main__
}
TOP = {
    "promcast.daemon.app": "app",
    "promcast.daemon.cli": "app",
    "promcast.daemon.health": "app",
    "promcast.daemon.reference": "app",
    "promcast.daemon": "base",
}


def _room(module: str) -> str:
    parts = module.split(".")  # promcast.daemon.<room>.<module>
    if module in TOP:
        return TOP[module]
    return parts[2] if parts[2] in ROOMS else "base"


def test_each_room_imports_only_the_rooms_below_it() -> None:
    graph = _graph("daemon")
    bad = sorted(
        f"{m} -> {d}" for m, deps in graph.items() for d in deps if _room(d) not in {_room(m), *ROOMS[_room(m)]}
    )
    assert not bad, bad


def test_the_room_check_sees_a_wrong_import() -> None:
    assert _room("promcast.daemon.cycle.job") == "cycle"
    assert _room("promcast.daemon.settings.target") == "settings"
    assert _room("promcast.daemon.types") == "base"
    assert "cycle" not in ROOMS["models"]  # models may not import the cycle


def test_every_daemon_module_lives_in_a_room() -> None:
    loose = sorted(m for m in _modules("daemon") if m.count(".") == 2 and _room(m) == "base")
    assert loose == ["promcast.daemon.build", "promcast.daemon.clock", "promcast.daemon.logs", "promcast.daemon.types"]


def test_daemon_modules_stay_small_and_no_hub() -> None:
    graph = _graph("daemon")
    for module, path in _modules("daemon").items():
        lines = len(path.read_text().splitlines())
        assert lines <= 320, f"{module}: {lines} lines"
        siblings = {d for d in graph[module] if d.rsplit(".", 1)[0] == module.rsplit(".", 1)[0]}
        assert len(siblings) <= 8, f"{module} imports {len(siblings)} modules of its room: {sorted(siblings)}"
        assert len(graph[module]) <= 14, f"{module} imports {len(graph[module])} daemon modules"


def test_the_retrain_entry_points_load_no_module_of_the_cycle() -> None:
    """``promcast train`` and the first-training child run as their own processes: they load the model store and
    the training, never the live cycle."""
    code = (
        "import sys, promcast.daemon.cli, promcast.daemon.models.commands, promcast.daemon.models.retrain, "
        "promcast.daemon.models.training; live = ('promcast.daemon.cycle', 'promcast.daemon.http.server', "
        "'promcast.daemon.app'); print(sorted(m for m in sys.modules if m.startswith(live)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_no_code_imports_the_repository_folders_by_their_own_names() -> None:
    """daemon/ and forecaster/ are promcast.daemon and promcast.forecaster: imported under both names, a module
    would load twice, with two copies of its state."""
    for package in ("daemon", "forecaster", "tests", "benchmarks"):
        for module, path in _modules(package).items():
            bad = sorted(i for i in _imports(path, package) if i.split(".")[0] in ("daemon", "forecaster"))
            assert not bad, f"{module} imports {bad}"


def test_the_wheel_leaves_the_development_tools_out() -> None:
    """localprom starts a throw-away Prometheus for tests and benchmarks: it lives in tests/support, outside the
    packages the wheel installs."""
    assert not (ROOT / "daemon" / "localprom.py").exists()
    assert (ROOT / "tests" / "support" / "localprom.py").is_file()
