"""The package's layering (docs/architecture.md): contracts, no import cycles, one writer.

The import contracts live in pyproject.toml (``[tool.importlinter]``) and are also run by
``lint-imports`` in .ci/run; this test runs them so that ``pytest`` alone catches a module that
imports against the layering.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "glutewake"
#: the only packages that may open the catalog read-write
WRITERS = ("store", "pipeline")


def test_import_contracts_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename="pyproject.toml", no_cache=True) == 0


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    adj = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in adj[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(adj):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_between_modules() -> None:
    # function-level imports count too: a cycle hidden in a function is still a cycle
    assert _cycles(grimp.build_graph("glutewake")) == []


def test_cycle_finder_finds_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "cyclic_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cyclic_demo import b\n")
    (pkg / "b.py").write_text("from cyclic_demo import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("cyclic_demo", cache_dir=None)) == [
        ["cyclic_demo.a", "cyclic_demo.b"]
    ]


def _names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    return names


def test_only_store_and_pipeline_open_the_catalog_for_writing() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in WRITERS and "open_write" in _names_used(path)
    ]
    assert offenders == []


def test_writer_check_sees_a_writer(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from glutewake.store import catalog\nwith catalog.open_write(d): pass\n")
    assert "open_write" in _names_used(module)
