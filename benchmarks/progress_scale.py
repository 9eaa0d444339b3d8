"""CPU of the live progress table over many targets (`ApplyProgress` on a terminal).

For each size N (default 50 and 400) this drives one `ApplyProgress` with `force_terminal=True`
writing to an in-memory stream, as apply does: every target reports `waiting`, then — at most
`--running` at a time, in order — `creating`, `deleting` and `done` (every 25th target `failed`
instead of `done`), with `--interval` seconds of sleep between stage changes so the auto-refresh
gets the wall time a real apply would give it. It reports wall time, this process's user+system
CPU (all threads, so the refresh thread counts), bytes written to the "terminal", and how many
times the table was built.

`--baseline FILE` runs the same with another progress module (for instance the previous
`snapshot_policy/output/progress.py`, copied aside before a change), so before and after are
measured on one machine in one run.

    python benchmarks/progress_scale.py
    python benchmarks/progress_scale.py --sizes 50 400 --baseline /tmp/progress_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from snapshot_policy.core.model import RetentionPolicy, Target  # noqa: E402


def load(path: str | None):
    if path is None:
        from snapshot_policy.output import progress

        return progress
    spec = importlib.util.spec_from_file_location("progress_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(module, size: int, running: int, interval: float) -> dict[str, float]:
    targets = [
        Target(
            f"t{i // 10:03d}",
            "hetzner",
            "hz",
            str(1000 + i),
            f"srv-{i}",
            RetentionPolicy(keep_last=3),
        )
        for i in range(size)
    ]
    stream = io.StringIO()
    tables = 0
    progress = module.ApplyProgress(stream, force_terminal=True)
    build = progress.table

    def counted():
        nonlocal tables
        tables += 1
        return build()

    progress.table = counted
    if progress._display is not None:  # Live holds the bound method it was given
        progress._display.get_renderable = counted
    # Stage changes in the order a pool of `running` workers would make them.
    events = [(t, "waiting") for t in targets]
    for start in range(0, size, running):
        batch = targets[start : start + running]
        for stage in ("creating", "deleting"):
            events += [(t, stage) for t in batch]
        events += [(t, "failed" if (start + k) % 25 == 24 else "done") for k, t in enumerate(batch)]
    wall, before = time.perf_counter(), cpu()
    with progress:
        for target, stage in events:
            progress(target, stage)
            if interval:
                time.sleep(interval)
    return {
        "wall": time.perf_counter() - wall,
        "cpu": cpu() - before,
        "bytes": len(stream.getvalue()),
        "tables": tables,
        "updates": len(events),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 400])
    parser.add_argument(
        "--running", type=int, default=8, help="targets between waiting and done at once"
    )
    parser.add_argument(
        "--interval", type=float, default=0.002, help="seconds between stage changes"
    )
    parser.add_argument("--baseline", help="another progress.py to measure as well")
    args = parser.parse_args()
    variants = [("current", load(None))] + (
        [("baseline", load(args.baseline))] if args.baseline else []
    )
    print(
        f"{'variant':<9} {'targets':>7} {'updates':>7} {'wall s':>7} {'CPU s':>7} "
        f"{'tables':>7} {'bytes':>11}"
    )
    for size in args.sizes:
        for name, module in variants:
            r = run(module, size, args.running, args.interval)
            print(
                f"{name:<9} {size:>7} {r['updates']:>7} {r['wall']:>7.2f} {r['cpu']:>7.2f} "
                f"{r['tables']:>7} {r['bytes']:>11,}"
            )


if __name__ == "__main__":
    main()
