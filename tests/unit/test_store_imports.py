"""The store is the bottom layer: it imports the schema, the errors, the lazy numba kernels
(``teiten.jit``) and itself, nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

STORE = Path(__file__).resolve().parents[2] / "src/teiten/store"
ALLOWED = ("teiten.schema", "teiten.errors", "teiten.jit", "teiten.store")


def _teiten_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("teiten")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("teiten"):
            found.add(node.module or "")
    return found


def test_the_store_imports_only_the_schema_and_the_errors() -> None:
    wrong = {
        f"{path.name}: {name}"
        for path in sorted(STORE.glob("*.py"))
        for name in _teiten_imports(path)
        if not any(name == a or name.startswith(a + ".") for a in ALLOWED)
    }
    assert wrong == set()


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from teiten.analysis.alerts import Alert\n    import teiten.enrich\n"
    )
    assert _teiten_imports(module) == {"teiten.analysis.alerts", "teiten.enrich"}
