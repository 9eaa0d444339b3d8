"""The pure core loads no SDK (ARCHITECTURE.md): planning works, and is tested, without them."""

from __future__ import annotations

import subprocess
import sys

CORE = ("model", "retention", "reconcile", "ownership")
SDKS = ("pydo", "hcloud", "telegram", "httpx", "azure", "requests")
PROBE = f"""
import sys
{"; ".join(f"import snapshot_policy.{module}" for module in CORE)}
print(sorted(m for m in sys.modules if m.split(".")[0] in {SDKS!r}))
"""


def test_pure_core_imports_no_sdk():
    # A fresh interpreter: this one has loaded every SDK already through other tests.
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


CLOUDLESS_COMMANDS = [["--version"], ["--help"], ["simulate", "--keep-last", "3", "--days", "2"], ["completion", "bash"], ["validate", "--help"]]


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
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert result.stdout.splitlines()[-1] == "SDKS []"
