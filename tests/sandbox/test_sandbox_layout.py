"""The sandbox's shape, checked from its source: no import cycles between its modules
(type-only and function-level imports included) and no file over 500 lines.

The checks are plain functions over an import graph, so they are also tested here on
small synthetic packages and graphs, to show that each one fails when it should.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.imports import find_cycles

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500

Graph = dict[str, set[str]]


@pytest.fixture
def sandbox() -> None:
    """No sandbox server here: these tests read source files (overrides the autouse one)."""


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package_dir: Path) -> Graph:
    """module -> the modules of the same package it imports, from every import statement
    anywhere in the file. `from pkg import name` counts as importing `pkg.name` when that
    is a module of the package, else as importing `pkg` itself."""
    package = package_dir.name
    files = {module_name(package_dir, p): p for p in sorted(package_dir.rglob("*.py"))}
    graph: Graph = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    targets.append(candidate if candidate in files else base)
            for target in targets:
                if target == package or target.startswith(f"{package}."):
                    # `import a.b.c` names a.b.c; keep the longest prefix that is a module.
                    while target not in files and "." in target:
                        target = target.rsplit(".", 1)[0]
                    if target in files and target != name:
                        graph[name].add(target)
    return graph


def long_files(package_dir: Path, limit: int = MAX_LINES) -> dict[str, int]:
    lengths = {
        str(p.relative_to(package_dir.parent)): len(p.read_text(encoding="utf-8").splitlines())
        for p in sorted(package_dir.rglob("*.py"))
    }
    return {path: n for path, n in lengths.items() if n > limit}


# --- the sandbox itself -------------------------------------------------------------


def test_no_two_sandbox_modules_import_each_other():
    graph = import_graph(ROOT / "sandbox")

    assert len(graph) > 30  # the walk found the sub-packages
    assert "sandbox.calendar.backend" in graph["sandbox.calendar.handlers"]
    assert find_cycles(graph) == []


def test_no_sandbox_file_is_over_500_lines():
    assert long_files(ROOT / "sandbox") == {}


def test_api_packages_import_only_the_core_except_control():
    graph = import_graph(ROOT / "sandbox")
    apis = ("calendar", "oauth", "secretmanager")
    crossing = {
        (module, target)
        for module, targets in graph.items()
        for target in targets
        for api in apis
        if module.startswith(f"sandbox.{api}")
        and not target.startswith((f"sandbox.{api}", "sandbox.core"))
    }
    core_up = {
        (module, target)
        for module, targets in graph.items()
        if module.startswith("sandbox.core")
        for target in targets
        if not target.startswith("sandbox.core")
    }

    assert crossing == set()
    assert core_up == set()


# --- the checks themselves fail when they should ---------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_find_cycles_reports_direct_indirect_and_self_imports():
    assert find_cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"a"}}) == [["a"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_import_graph_sees_type_only_relative_and_function_level_imports(tmp_path):
    package = write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/server.py": "from pkg.api import handlers\n",
            "pkg/api/__init__.py": "",
            "pkg/api/handlers.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from pkg.server import Server\n"
            ),
            "pkg/api/backend.py": "def f():\n    from . import render\n",
            "pkg/api/render.py": "import pkg.api.backend\n",
            "pkg/fine.py": "import json\nfrom pkg import api\n",
        },
    )

    graph = import_graph(package)

    assert graph["pkg.fine"] == {"pkg.api"}
    assert find_cycles(graph) == [
        ["pkg.api.backend", "pkg.api.render"],
        ["pkg.api.handlers", "pkg.server"],
    ]


def test_long_files_reports_a_file_over_the_limit(tmp_path):
    package = write(tmp_path, {"pkg/short.py": "x = 1\n" * 500, "pkg/long.py": "x = 1\n" * 501})

    assert long_files(package) == {"pkg/long.py": 501}
