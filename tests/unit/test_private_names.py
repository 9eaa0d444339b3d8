"""A name starting with `_` belongs to its module: what another module uses is public, under a
name that says what it is, so a reader of either module sees the seam (issue 22)."""

from __future__ import annotations

import ast
from pathlib import Path

import snapshot_policy

PACKAGE = Path(snapshot_policy.__file__).parent


def private_imports(source: str) -> list[str]:
    """`module._name` for each private name `source` imports from another module of ours,
    relative imports included; dunders (`__version__`) are public by convention."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        ours = node.level > 0 or (node.module or "").startswith("snapshot_policy")
        for alias in node.names:
            if ours and alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"{'.' * node.level}{node.module or ''}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names():
    offending = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if (names := private_imports(path.read_text(encoding="utf-8")))
    }
    assert offending == {}


def test_the_check_sees_absolute_and_relative_imports():
    source = "from snapshot_policy.output.render import _wrap, fit\nfrom .state import _x\n"
    assert private_imports(source) == ["snapshot_policy.output.render._wrap", ".state._x"]
    assert private_imports("from snapshot_policy import __version__\n") == []
