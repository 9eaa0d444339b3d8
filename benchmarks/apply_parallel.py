"""How long apply takes over N targets whose snapshots take S seconds each, against the sandbox.

Runs the real CLI (`apply --policy`) in-process against a local sandbox, once with the
default parallelism and once with --parallel 1 as the sequential baseline, and prints wall
times, their ratio and API requests per server. Usage:

    python benchmarks/apply_parallel.py [--targets 20] [--action-seconds 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from snapshot_policy.cli import main
from snapshot_policy.sandbox import Sandbox

TOKEN = "benchmark-token"


def cloud(count: int) -> dict:
    return {
        "accounts": [{"name": "hz", "provider": "hetzner", "tokens": [TOKEN], "rate_limit": 1_000_000}],
        "servers": [{"account": "hz", "id": 1000 + n, "name": f"server-{n}"} for n in range(count)],
    }


def policy(count: int, folder: Path) -> Path:
    targets = "\n".join(f"  - {{name: t{n}, account: hz, ids: [{1000 + n}]}}" for n in range(count))
    path = folder / "policy.yaml"
    path.write_text(
        "version: 1\naccounts:\n  hz: {provider: hetzner, token: env:BENCH_TOKEN}\n"
        f"defaults:\n  retention: {{keep_last: 3}}\ntargets:\n{targets}\nsettings:\n  lock_file: lock\n"
    )
    return path


def run(count: int, action_seconds: float, extra: list[str]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder, Sandbox(cloud(count), action_seconds=action_seconds) as sandbox:
        os.environ.update(sandbox.env(), BENCH_TOKEN=TOKEN)
        path = policy(count, Path(folder))
        started = time.monotonic()
        code = main(["apply", "--policy", str(path), *extra])
        elapsed = time.monotonic() - started
        assert code == 0, f"apply exited {code}"
        return elapsed, len(sandbox.requests())


def main_benchmark() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--action-seconds", type=float, default=2.0)
    args = parser.parse_args()
    parallel, requests = run(args.targets, args.action_seconds, [])
    sequential, _ = run(args.targets, args.action_seconds, ["--parallel", "1"])
    print(f"{args.targets} targets, snapshot actions of {args.action_seconds:g} s each")
    print(f"  default parallelism: {parallel:6.1f} s   ({requests / args.targets:.1f} API requests per server)")
    print(f"  --parallel 1:        {sequential:6.1f} s")
    print(f"  speed-up:            {sequential / parallel:6.1f}x")


if __name__ == "__main__":
    main_benchmark()
