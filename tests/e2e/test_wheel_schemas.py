"""The wheel carries the JSON Schemas inside the package, and the installed code finds them there.

Installing into a fresh venv would take most of a minute; a wheel is a zip laid out as
site-packages, so unzipping it and putting it first on PYTHONPATH is the same import.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILES = sorted(p.name for p in (ROOT / "schemas").glob("*.schema.json"))


def build_wheel(out: Path) -> Path:
    # Without build isolation pip reuses the hatchling already installed, needing no network.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--quiet",
        *isolation,
        "--wheel-dir",
        str(out),
        str(ROOT),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("snapshot_policy-*.whl")
    return wheel


def test_the_installed_wheel_finds_its_own_schemas(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(
            n.removeprefix("snapshot_policy/schemas/")
            for n in archive.namelist()
            if n.startswith("snapshot_policy/schemas/")
        )
        archive.extractall(tmp_path / "site")
    assert SCHEMA_FILES and shipped == SCHEMA_FILES

    probe = (
        "from snapshot_policy.config.schemas import load_schema, schema_dir; "
        "print(schema_dir()); print(load_schema('policy')['title'])"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found, title = done.stdout.splitlines()
    assert Path(found) == tmp_path / "site" / "snapshot_policy" / "schemas"
    assert title == "snapshot-policy policy"
