"""How long the commands that talk to no cloud take to start, against `python -c pass`.

Each command runs in a fresh interpreter, `--repeat` times; the median wall time is printed,
with the interpreter's own start subtracted. Usage:

    python benchmarks/startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "--version": ["-m", "snapshot_policy", "--version"],
    "--help": ["-m", "snapshot_policy", "--help"],
    "simulate --keep-last 3 --days 2": [
        "-m",
        "snapshot_policy",
        "simulate",
        "--keep-last",
        "3",
        "--days",
        "2",
    ],
    "completion bash": ["-m", "snapshot_policy", "completion", "bash"],
}


def median_seconds(args: list[str], repeat: int, folder: str) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=folder, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = median_seconds(COMMANDS["python -c pass"], args.repeat, folder)
        print(
            "| command | median wall | beyond `python -c pass` |\n|---|---|---|\n"
            f"| python -c pass | {base * 1000:.0f} ms | — |"
        )
        for name, argv in list(COMMANDS.items())[1:]:
            seconds = median_seconds(argv, args.repeat, folder)
            print(f"| {name} | {seconds * 1000:.0f} ms | {(seconds - base) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
