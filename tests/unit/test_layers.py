"""Each folder of the package is a layer, and a layer imports only the layers it stands on
(docs/architecture.md): the pure core decides without I/O, so it is tested, and plans, with no
cloud, chat or file in reach."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import snapshot_policy

PACKAGE = Path(snapshot_policy.__file__).parent

# What each layer may import from the package; the commands at the top (cli, demo) take any.
ALLOWED = {
    "core": {"core"},
    "state": {"core", "state"},
    "pacing": {"core", "pacing"},
    "output": {"core", "state", "output"},
    "config": {"core", "config"},
    "edges": {"core", "state", "pacing", "output", "edges"},
    "engine": {"core", "state", "pacing", "output", "config", "edges", "engine"},
    "sandbox": {"sandbox"},
}
# Besides the standard library, the one package the pure core may load: cron expressions.
CORE_THIRD_PARTY = {"cronsim"}
SDKS = ("pydo", "hcloud", "telegram", "httpx", "azure", "requests", "apprise")


def imported(source: str, package: str) -> list[str]:
    """Every module a source in `package` imports, relative imports made absolute;
    `from snapshot_policy import x` counts as `snapshot_policy.x`."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            if base == "snapshot_policy" or (node.level and not node.module):
                names += [f"{base}.{alias.name}" for alias in node.names]
            else:
                names.append(base)
    return names


def violations(package: Path) -> list[str]:
    """Each import that crosses a layer the wrong way, as `file: imports module`. No layer
    may import the commands (`cli`), which stand on every layer."""
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        layer = parts[0] if len(parts) > 1 else None
        if layer not in ALLOWED:
            continue
        home = ".".join(["snapshot_policy", *parts[:-1]])
        for module in imported(path.read_text(encoding="utf-8"), home):
            top, _, rest = module.partition(".")
            if top == "snapshot_policy":
                target = rest.split(".")[0]
                if target not in ALLOWED[layer] and target not in ("", "__version__"):
                    found.append(f"{'/'.join(parts)}: imports {module}")
            elif layer == "core" and top not in sys.stdlib_module_names | CORE_THIRD_PARTY:
                found.append(f"{'/'.join(parts)}: imports {module}")
    return found


def test_every_layer_imports_only_the_layers_it_stands_on():
    assert violations(PACKAGE) == []


def test_a_pure_module_importing_an_edge_is_caught(tmp_path):
    core = tmp_path / "core"
    core.mkdir()
    (core / "rule.py").write_text(
        "from snapshot_policy.edges.providers import connect\nimport httpx\n"
        "from snapshot_policy.core import model\nfrom . import retention\n"
        "from ..edges import hooks\nfrom snapshot_policy import cli\n"
    )
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "file.py").write_text("from snapshot_policy import engine\n")
    assert violations(tmp_path) == [
        "core/rule.py: imports snapshot_policy.edges.providers",
        "core/rule.py: imports httpx",
        "core/rule.py: imports snapshot_policy.edges",
        "core/rule.py: imports snapshot_policy.cli",
        "state/file.py: imports snapshot_policy.engine",
    ]


def test_the_pure_core_loads_no_sdk():
    """The same, at run time, in a fresh interpreter: this one has loaded every SDK already."""
    modules = sorted(p.stem for p in (PACKAGE / "core").glob("*.py") if p.stem != "__init__")
    probe = "\n".join(
        ["import sys"]
        + [f"import snapshot_policy.core.{module}" for module in modules]
        + [f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SDKS!r}))"]
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


CLOUDLESS_COMMANDS = [
    ["--version"],
    ["--help"],
    ["simulate", "--keep-last", "3", "--days", "2"],
    ["completion", "bash"],
    ["validate", "--help"],
]


def test_commands_that_talk_to_no_cloud_load_no_sdk(tmp_path):
    """Start-up stays quick: only plan, apply, validate --online, sandbox and demo load the SDKs."""
    probe = f"""
import sys
from snapshot_policy.cli import main
for argv in {CLOUDLESS_COMMANDS!r}:
    try:
        main(argv)
    except SystemExit:
        pass
print("SDKS", sorted(m for m in sys.modules if m.split(".")[0] in {SDKS!r}))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.splitlines()[-1] == "SDKS []"
