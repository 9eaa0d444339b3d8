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
