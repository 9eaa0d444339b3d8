"""Record what snapshots.py produces on the side-by-side folder, as the reference the tests
compare this tool with (tests/e2e/test_side_by_side.py):

    SNAPSHOTS_PY=/path/to/snapshots.py python tests/reference/record_snapshots_py.py

snapshots.py is GPL and never committed: give the path of a copy (github.com/drhdev/snapshots).
It runs unchanged against the sandbox (`run_snapshots_py.py` routes its HTTP there), with
TZ=Europe/Berlin; the reference holds only what it produced, normalised (`side_by_side`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.reference.side_by_side import REFERENCE, SCENARIOS, TZ, run_old  # noqa: E402


def record(script: Path) -> dict:
    scenarios = {}
    for scenario in SCENARIOS:
        with tempfile.TemporaryDirectory() as folder:
            scenarios[scenario] = run_old(script, Path(folder), scenario)
    return {
        "about": (
            "What snapshots.py produced on tests/reference/side_by_side.py's folder, normalised; "
            "rewritten by tests/reference/record_snapshots_py.py"
        ),
        "snapshots_py_sha256": hashlib.sha256(script.read_bytes()).hexdigest(),
        "tz": TZ,
        "scenarios": scenarios,
    }


def main() -> int:
    path = os.environ.get("SNAPSHOTS_PY")
    if not path or not Path(path).is_file():
        print("set SNAPSHOTS_PY to the path of snapshots.py", file=sys.stderr)
        return 1
    reference = record(Path(path))
    REFERENCE.write_text(json.dumps(reference, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
