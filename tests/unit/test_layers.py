"""The import arrows point one way: each package imports only its own layer or lower ones,
and the packages of one layer form no cycle (docs/architecture.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "teiten"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "schema", "escape", "csvcell", "secrecy", "session", "heap", "jit"}),
    frozenset({"store"}),
    frozenset(
        {
            "capture",
            "decode",
            "flows",
            "classify",
            "fingerprint",
            "enrich",
            "advisories",
            "simulate",
            "sql",
        }
    ),
    frozenset({"engine"}),
    frozenset({"analysis", "backcheck", "export", "report", "pipeline", "tags"}),
    frozenset({"config"}),
    frozenset({"app"}),
    frozenset({"cli", "sensor", "serve"}),
    frozenset({"__main__", "__init__"}),
)
"""Bottom to top. The library packages (up to ``pipeline``) take engines, tables and
plain values; only ``app`` and the entry points read settings."""


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path, root: Path = SRC) -> set[str]:
    """The teiten packages a module imports (at module level or inside functions)."""
    rel = path.relative_to(root).with_suffix("")
    here = ["teiten", *rel.parts]
    if path.name == "__init__.py":
        here = here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + (1 if path.name == "__init__.py" else 0)]
                names = [".".join([*base, *([node.module] if node.module else [])])]
            else:
                names = [node.module or ""]
        for name in names:
            parts = name.split(".")
            if parts[0] == "teiten" and len(parts) > 1:
                found.add(parts[1])
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        pkg = _package(path)
        graph.setdefault(pkg, set()).update(_imports(path) - {pkg})
    return graph


def _layer(pkg: str) -> int:
    for i, layer in enumerate(LAYERS):
        if pkg in layer:
            return i
    raise AssertionError(f"package {pkg!r} is in no layer: add it to LAYERS and the docs")


def test_every_package_has_a_layer() -> None:
    for pkg in _graph():
        _layer(pkg)


def test_imports_point_down() -> None:
    upward = sorted(
        f"{pkg} -> {dep}"
        for pkg, deps in _graph().items()
        for dep in deps
        if _layer(dep) > _layer(pkg)
    )
    assert upward == []


def test_no_cycle_between_packages() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(pkg: str, trail: list[str]) -> bool:
        state[pkg] = 1
        for dep in sorted(graph.get(pkg, ())):
            if state.get(dep) == 1:
                cycle.extend([*trail, pkg, dep])
                return True
            if dep not in state and visit(dep, [*trail, pkg]):
                return True
        state[pkg] = 2
        return False

    for pkg in sorted(graph):
        if pkg not in state and visit(pkg, []):
            break
    assert cycle == []


def test_the_check_sees_relative_and_function_imports(tmp_path: Path) -> None:
    root = tmp_path / "teiten"
    module = root / "analysis" / "m.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from . import window\nfrom ..sql import traffic\n"
        "def f():\n    import teiten.app.engine\n    from teiten.config import Settings\n"
    )
    assert _imports(module, root) == {"analysis", "sql", "app", "config"}
