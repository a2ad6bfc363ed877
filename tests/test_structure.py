"""Tests of the package's structure: the import graph, the layers, the pytest edge, the
lazy-import promise, and facts kept in one place.

The import graph is read from the source (every ``import`` and ``from ... import`` anywhere in
a module: top level, in functions, under ``if TYPE_CHECKING:``), not from ``sys.modules``, so
an import that only runs on some path still counts. :data:`MAY_IMPORT` is the table
``docs/architecture.md`` shows as "what each part may import".
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from test_plugin import make_task

import pytest_agentspeed
from pytest_agentspeed.agents import agent_names
from pytest_agentspeed.edge.options import settings_from_config

PACKAGE = "pytest_agentspeed"
PACKAGE_DIR = Path(pytest_agentspeed.__file__).resolve().parent

# --------------------------------------------------------------------------------------------
# The rules, as data

#: Part of the package -> the parts it may import (besides itself). A part is a top-level
#: module or sub-package of ``pytest_agentspeed``; ``pytest_agentspeed`` is the package's own
#: ``__init__`` (its public names). Base parts first, the edge and the CLI last.
MAY_IMPORT: dict[str, frozenset[str]] = {
    # The base: plain data and mechanisms every layer may use.
    "errors": frozenset(),
    "processes": frozenset({"errors"}),
    "records": frozenset({"errors", "timing"}),
    "timing": frozenset({"errors", "records"}),
    "trajectory_file": frozenset({"errors"}),
    "tasks": frozenset({"errors", "trajectory_file"}),
    "runfile": frozenset({"errors", "records"}),
    "exchanges": frozenset({"errors", "records", "timing"}),
    "sent": frozenset(),
    # The simulated endpoint: plain Python on the base, nothing of the plugin's core.
    "simulator": frozenset({"errors", "processes", "tasks", "trajectory_file"}),
    # What the run is made of.
    "endpoints": frozenset({"errors", "simulator"}),
    "clients": frozenset({"errors", "records", "timing", "sent", "endpoints"}),
    # The recording proxy in front of an external agent's endpoint: it maps the streams it
    # forwards with the clients' own code.
    "proxy": frozenset(
        {"errors", "records", "timing", "sent", "exchanges", "endpoints", "clients"}
    ),
    "agents": frozenset(
        {"errors", "processes", "records", "timing", "sent", "exchanges", "tasks", "clients"}
    ),
    # Recordings and replaying one session: on the clients, below the run core.
    "replay": frozenset(
        {
            "pytest_agentspeed",
            "errors",
            "records",
            "timing",
            "sent",
            "runfile",
            "endpoints",
            "clients",
            "agents",
        }
    ),
    "analysis": frozenset({"errors", "records", "timing", "runfile"}),
    "outputs": frozenset({"errors", "records", "timing", "runfile", "analysis"}),
    "settings": frozenset({"errors", "endpoints", "analysis", "agents"}),
    # The pytest-free run core.
    "run": frozenset(
        {
            # Its version, for the run record.
            "pytest_agentspeed",
            "errors",
            "processes",
            "records",
            "timing",
            "tasks",
            "runfile",
            "exchanges",
            "sent",
            "simulator",
            "endpoints",
            "clients",
            "proxy",
            "agents",
            "replay",
            "analysis",
            "outputs",
            "settings",
        }
    ),
    # The adapters: pytest, and the command line.
    "edge": frozenset(
        {
            "pytest_agentspeed",
            "errors",
            "processes",
            "records",
            "timing",
            "tasks",
            "runfile",
            "exchanges",
            "sent",
            "simulator",
            "endpoints",
            "clients",
            "proxy",
            "agents",
            "replay",
            "analysis",
            "outputs",
            "settings",
            "run",
        }
    ),
    "cli": frozenset(
        {
            "pytest_agentspeed",
            "errors",
            "records",
            "timing",
            "tasks",
            "runfile",
            "simulator",
            "endpoints",
            "analysis",
            "outputs",
            "settings",
            "run",
            # The gate options, declared once for ``pytest`` and ``agentspeed compare``.
            "edge",
        }
    ),
    "__main__": frozenset({"cli"}),
    "pytest_agentspeed": frozenset({"errors", "records", "tasks"}),
}

#: The only modules outside ``simulator/`` may import of the simulator: its interface.
SIMULATOR_INTERFACE = frozenset({"pytest_agentspeed.simulator"})

#: The part whose modules may import pytest (and pluggy).
PYTEST_EDGE = "edge"
PYTEST_MODULES = frozenset({"pytest", "_pytest", "pluggy"})

#: What importing the plugin must not load (the lazy-import promise): every pytest run in the
#: environment imports the plugin, including the runs task checks start.
HEAVY = (
    "anthropic",
    "httpx",
    "httpx2",
    "jinja2",
    "markupsafe",
    "numpy",
    "openai",
    "scipy",
    "starlette",
    "uvicorn",
)

#: Modules over this many lines must say in their docstring why they are one thing.
MAX_LINES = 500
#: ... with this word.
COHESIVE_MARKER = "cohesive"


# --------------------------------------------------------------------------------------------
# The import graph


@dataclass(frozen=True, slots=True)
class Import:
    """One import of a package module by another, as written in the source."""

    importer: str
    target: str
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return _modules()[module].name == "__init__.py"


def _existing(name: str) -> str | None:
    """``name`` if it is a module of the package, else its longest prefix that is one."""
    modules = _modules()
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imported_names(module: str, tree: ast.Module) -> Iterator[tuple[str, int]]:
    """Every absolute module name ``module`` imports, with the line; ``from X import n`` gives
    ``X.n`` when that is a module of the package, else ``X``."""
    package = module if _is_package(module) else module.rpartition(".")[0]
    uses_importlib = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                uses_importlib |= alias.name == "importlib"
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            uses_importlib |= base == "importlib"
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full if full in _modules() else base), node.lineno
    if uses_importlib:
        # importlib.import_module("pytest_agentspeed.x") and tables of such names (the
        # package's lazy public names): string constants naming a module of the package.
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in _modules()
            ):
                yield node.value, node.lineno


@cache
def _imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, line in _imported_names(module, tree):
            if name.split(".")[0] != PACKAGE:
                continue
            target = _existing(name)
            assert target is not None, f"{path}:{line}: {name} is not a module of the package"
            found.append(Import(module, target, line))
    return tuple(found)


@cache
def _graph() -> dict[str, set[str]]:
    """Module -> the modules importing it runs.

    An import of ``a.b.c`` runs ``a.b.c`` and first the ``__init__`` of each package above it.
    The packages that contain the importer are left out: their ``__init__`` ran before the
    importer did, so a package's ``__init__`` importing its own submodules is not a cycle.
    (The top-level package contains every module, so it is only reached by importing it.)
    """
    graph: dict[str, set[str]] = {module: set() for module in _modules()}
    for imp in _imports():
        parts = imp.target.split(".")
        for size in range(1, len(parts)):
            ancestor = ".".join(parts[:size])
            inside = imp.importer == ancestor or imp.importer.startswith(f"{ancestor}.")
            if not inside:
                graph[imp.importer].add(ancestor)
        if imp.target != imp.importer:
            graph[imp.importer].add(imp.target)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of modules (first == last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def _where(imp: Import) -> str:
    return f"{_modules()[imp.importer].relative_to(PACKAGE_DIR.parent)}:{imp.line}"


# --------------------------------------------------------------------------------------------
# The scanner itself


def test_the_scanner_sees_imports_in_every_form() -> None:
    tree = ast.parse(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from . import config\n"
        "from .faults import fault_rates\n"
        "from .. import errors\n"
        "if TYPE_CHECKING:\n"
        "    from pytest_agentspeed.simulator.process import SimulatorHandle\n"
        "def f():\n"
        "    import pytest_agentspeed.simulator.server\n"
    )
    names = [name for name, _ in _imported_names("pytest_agentspeed.simulator.replies", tree)]
    assert [n for n in names if n.startswith(PACKAGE)] == [
        "pytest_agentspeed.simulator.config",
        "pytest_agentspeed.simulator.faults",
        "pytest_agentspeed.errors",
        "pytest_agentspeed.simulator.process",
        "pytest_agentspeed.simulator.server",
    ]


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_importing_a_submodule_implies_its_package_from_outside_only() -> None:
    graph = _graph()
    # endpoints' model imports the simulator's interface; the simulator's modules import each
    # other without an edge to the package's __init__ (it ran before them).
    assert "pytest_agentspeed.simulator" in graph["pytest_agentspeed.endpoints.model"]
    assert "pytest_agentspeed.simulator" not in graph["pytest_agentspeed.simulator.server"]
    assert "pytest_agentspeed.simulator.replies" in graph["pytest_agentspeed.simulator.server"]


# --------------------------------------------------------------------------------------------
# The rules


def test_the_import_graph_has_no_cycle() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_only_the_edge_imports_pytest() -> None:
    outside: list[str] = []
    for module, path in _modules().items():
        if _part(module) == PYTEST_EDGE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, line in _imported_names(module, tree):
            if name.split(".")[0] in PYTEST_MODULES:
                outside.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {name}")
    assert outside == [], "pytest imported outside pytest_agentspeed/edge/:\n" + "\n".join(outside)


def test_every_part_is_in_the_layer_table() -> None:
    parts = {_part(module) for module in _modules()}
    assert parts - set(MAY_IMPORT) == set(), "add new parts to MAY_IMPORT (and the docs)"


def test_each_part_imports_only_what_it_may() -> None:
    wrong = [
        f"{_where(imp)}: {_part(imp.importer)} may not import {imp.target}"
        for imp in _imports()
        if _part(imp.target) != _part(imp.importer)
        and _part(imp.target) not in MAY_IMPORT.get(_part(imp.importer), frozenset())
    ]
    assert wrong == [], "\n".join(wrong)


def test_outside_the_simulator_only_its_interface_is_imported() -> None:
    wrong = [
        f"{_where(imp)}: imports {imp.target}; use {', '.join(sorted(SIMULATOR_INTERFACE))}"
        for imp in _imports()
        if _part(imp.target) == "simulator"
        and _part(imp.importer) != "simulator"
        and imp.target not in SIMULATOR_INTERFACE
    ]
    assert wrong == [], "\n".join(wrong)


def test_the_layer_table_is_acyclic_apart_from_records_and_timing() -> None:
    # records and timing are one base (turns are built from timing's phases into records);
    # the module graph above keeps them from importing each other in a circle.
    table = {part: set(allowed) for part, allowed in MAY_IMPORT.items()}
    table["records"].discard("timing")
    assert _find_cycle({part: {p for p in table[part] if p in table} for part in table}) is None


# --------------------------------------------------------------------------------------------
# The lazy-import promise


def _edge_modules() -> list[str]:
    return [module for module in _modules() if _part(module) == PYTEST_EDGE]


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    modules = [*_edge_modules(), "pytest_agentspeed.agents", "pytest_agentspeed.simulator"]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert json.loads(out) == []


_RECORD_MODULES = f"""
import json, sys

def pytest_sessionfinish(session):
    loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))
    with open("loaded.json", "w") as file:
        json.dump(loaded, file)
"""


def test_a_pytest_run_with_the_plugin_loads_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(_RECORD_MODULES)
    pytester.makepyfile(test_plain="def test_one():\n    assert 1 + 1 == 2\n")

    def loaded(*args: str) -> set[str]:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=1)
        return set(json.loads((pytester.path / "loaded.json").read_text()))

    # Other plugins installed next to this one may load what they like; the plugin adds
    # nothing to it.
    without = loaded("-p", "no:agentspeed")
    with_plugin = loaded()
    assert with_plugin - without == set()


def test_a_run_of_one_arm_loads_no_scipy(pytester: pytest.Pytester) -> None:
    """The analysis at a run's end needs scipy only to compare two arms or a baseline: a run
    of one endpoint spares its 0.7 s (and so does every such nested run in these tests)."""
    # At unconfigure: after the plugin's end of run, its analysis and its outputs.
    pytester.makeconftest(
        _RECORD_MODULES.replace("pytest_sessionfinish(session)", "pytest_unconfigure(config)")
    )
    make_task(pytester.path, "alpha")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--agentspeed-time-scale=0.01", "--agentspeed-json=run.json"
    )
    result.assert_outcomes(passed=1)
    assert "scipy" not in json.loads((pytester.path / "loaded.json").read_text())
    run = json.loads((pytester.path / "run.json").read_text())
    assert (len(run["summary"]), run["comparisons"]) == (1, [])


# --------------------------------------------------------------------------------------------
# Facts kept in one place


def test_the_agent_option_accepts_exactly_the_registered_agents(
    pytester: pytest.Pytester,
) -> None:
    names = agent_names()
    assert names
    for name in names:
        config = pytester.parseconfig(f"--agentspeed-agent={name}")
        assert settings_from_config(config).agent == name
    # Checked when the settings are read, not by argparse: a conftest may register an agent,
    # and pytest parses the command line before it loads conftests.
    config = pytester.parseconfig("--agentspeed-agent=no-such-agent")
    with pytest.raises(pytest.UsageError) as info:
        settings_from_config(config)
    accepted = re.search(r"unknown agent 'no-such-agent'; accepted: ([^\n]*)", str(info.value))
    assert accepted is not None, str(info.value)
    assert tuple(accepted.group(1).split(", ")) == names


def test_the_gate_metric_names_are_defined_once() -> None:
    # The gate metric names as a tuple literal: a second copy anywhere is a second definition.
    defining = sorted(
        _module_name(path)
        for path in _modules().values()
        if any(
            isinstance(node, ast.Tuple)
            and any(
                isinstance(element, ast.Constant) and element.value == "tasks_per_window"
                for element in node.elts
            )
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )
    assert len(defining) == 1, f"gate metric names defined in: {', '.join(defining)}"


# --------------------------------------------------------------------------------------------
# Size


def test_no_module_is_over_500_lines_unless_it_says_why() -> None:
    offenders = []
    for path in _modules().values():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if COHESIVE_MARKER not in docstring.lower():
            offenders.append(f"{path.relative_to(PACKAGE_DIR.parent)}: {lines} lines")
    assert offenders == [], (
        f"over {MAX_LINES} lines with no word in the docstring on why it is one "
        f"{COHESIVE_MARKER} thing:\n" + "\n".join(offenders)
    )
