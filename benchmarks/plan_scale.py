"""`plan` over large fleets against the sandbox: wall time, the tool's own CPU, API requests.

For each fleet size N (default 1,000 and 4,000) this seeds a sandbox with N servers — half
on a DigitalOcean account, half on a Hetzner account — and `--snapshots` snapshots per server
(default 20, so 80,000 at N = 4,000), 60 % of them ours (marker and our name pattern) and the
rest manual, from a fixed seed. The policy covers every server in targets of 100: even
chunks by `ids`, odd chunks by `label_selector` (a DigitalOcean tag, a Hetzner label), so both
ways of resolving servers are exercised. It then runs the real command line in this process,
`cli.main(["plan", "--output", "json", ...], clock=fixed)`, and reports:

- wall: the whole command, configuration to rendered JSON;
- tool CPU: this process's user+system CPU during the command (all its threads);
- observe / build_plan: wall time inside each (the first includes waiting for the sandbox);
- sandbox CPU: the sandbox's, which runs in a child process so that its cost (serving
  1,080 pages of JSON at N = 4,000) is not mistaken for the tool's;
- requests: the sandbox's request log for the command.

`--baseline FILE` also runs each plan with another `observe` module (for instance the
previous `snapshot_policy/engine/observe.py`, copied aside before a change), on the same sandbox,
so before and after are measured on one machine in one run. `--latency S` delays every
provider request by S seconds (a `delay` fault without a count limit). `--page-readers N`
reads N pages of a listing at a time (providers/paging.py; 1: one after another).

    python benchmarks/plan_scale.py
    python benchmarks/plan_scale.py --sizes 1000 --latency 0.05 --baseline /tmp/observe_before.py
    python benchmarks/plan_scale.py --sizes 4000 --page-readers 1
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fleet import ACCOUNTS  # noqa: E402

from snapshot_policy import cli  # noqa: E402
from snapshot_policy.edges.providers import paging  # noqa: E402
from snapshot_policy.engine import run  # noqa: E402
from snapshot_policy.sandbox import Sandbox  # noqa: E402
from tests import factories  # noqa: E402
from tests.e2e.policies import policy_yaml  # noqa: E402

DO_TOKEN = "benchmark-do-token"
HZ_TOKEN = "benchmark-hz-token"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)  # time is an input: fixed, not today
PER_TARGET = 100


# -- the fleet and its policy ----------------------------------------------------------------


def fleet(size: int, per_server: int, seed: int) -> dict:
    """The sandbox state (tests/factories.py): `size` servers, half per account, `per_server`
    snapshots each, every PER_TARGET servers of an account tagged (DigitalOcean) or labelled
    (Hetzner) as one chunk, for the targets that select by label."""
    state = factories.fleet(
        size, seed=seed, now=NOW, snapshots=lambda rng: per_server, tokens=(DO_TOKEN, HZ_TOKEN)
    )
    for n, server in enumerate(state["servers"]):
        chunk = n // 2 // PER_TARGET  # n // 2: the server's position within its account
        if server["account"] == "do":
            server["tags"] = [f"chunk-{chunk}"]
        else:
            server["labels"] = {"chunk": str(chunk)}
    return state


def policy_text(state: dict, folder: Path) -> str:
    """Targets of 100 servers: even chunks by ids, odd chunks by label selector / tag."""
    targets = []
    for account in ("do", "hz"):
        ids = [s["id"] for s in state["servers"] if s["account"] == account]
        for chunk, start in enumerate(range(0, len(ids), PER_TARGET)):
            if chunk % 2 == 0:
                selector = {"ids": ids[start : start + PER_TARGET]}
            else:
                label = f"chunk-{chunk}" if account == "do" else f"chunk={chunk}"  # a tag, a label
                selector = {"label_selector": label}
            targets.append({"name": f"{account}-{chunk}", "account": account, **selector})
    return policy_yaml(
        *targets,
        accounts=ACCOUNTS,
        # max_deletions counts a target's deletions across its servers: 20 a server's worth.
        defaults={"retention": {"keep_last": 5}, "safety": {"max_deletions": 20 * PER_TARGET}},
        settings={
            "lock_file": str(folder / "run" / "lock"),
            "log": {"file": str(folder / "run" / "snapshot-policy.log"), "level": "WARNING"},
            "request_timeout": 60,
        },
    )


# -- the sandbox, in a child process ---------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sandbox_process(state: dict, latency: float, conn) -> None:
    """Serve `state` until told to stop; answer `clear` and `log` with the CPU used so far."""
    sandbox = Sandbox(state).start()
    if latency:
        for service in ("digitalocean", "hetzner"):
            sandbox.inject("delay", service=service, seconds=latency, count=None)
    conn.send(sandbox.env())
    while True:
        command = conn.recv()
        if command == "clear":
            sandbox.clear_requests()
            conn.send(_cpu())
        elif command == "log":
            conn.send(
                ([(r["provider"], r["method"], r["path"]) for r in sandbox.requests()], _cpu())
            )
        else:
            sandbox.stop()
            conn.send(None)
            return


class ChildSandbox:
    def __init__(self, state: dict, latency: float):
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_sandbox_process, args=(state, latency, child), daemon=True
        )
        self._process.start()
        self.env: dict[str, str] = self._conn.recv()

    def clear(self) -> float:
        self._conn.send("clear")
        return self._conn.recv()

    def log(self) -> tuple[list[tuple[str, str, str]], float]:
        self._conn.send("log")
        return self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        self._conn.recv()
        self._process.join(10)


# -- one measured plan -----------------------------------------------------------------------


@dataclass
class Measured:
    label: str
    size: int
    snapshots: int
    wall: float
    cpu: float
    observe: float
    build_plan: float
    sandbox_cpu: float
    requests: list[tuple[str, str, str]]
    targets: int
    digest: str


def load_observe(path: str):
    spec = importlib.util.spec_from_file_location("observe_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.observe


def measure_plan(label: str, observe, sandbox: ChildSandbox, folder: Path, state: dict) -> Measured:
    timings = {"observe": 0.0, "build_plan": 0.0}
    original = (run.observe, run.build_plan)

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                timings[name] += time.perf_counter() - started

        return wrapper

    run.observe, run.build_plan = timed("observe", observe), timed("build_plan", original[1])
    sandbox_before = sandbox.clear()
    out = io.StringIO()
    try:
        cpu_before, started = _cpu(), time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = cli.main(
                ["plan", "--policy", str(folder / "policy.yaml"), "--output", "json"],
                clock=lambda: NOW,
            )
        wall, cpu = time.perf_counter() - started, _cpu() - cpu_before
    finally:
        run.observe, run.build_plan = original
    requests, sandbox_after = sandbox.log()
    if code != 0:
        raise SystemExit(
            f"{label} N={len(state['servers'])}: plan exited {code}:\n{out.getvalue()[-3000:]}"
        )
    plan = json.loads(out.getvalue())
    digest = json.dumps(plan.get("targets", plan), sort_keys=True, default=str)
    targets = len(plan.get("targets", []))
    return Measured(
        label,
        len(state["servers"]),
        len(state["snapshots"]),
        wall,
        cpu,
        timings["observe"],
        timings["build_plan"],
        sandbox_after - sandbox_before,
        requests,
        targets,
        digest,
    )


def table(rows: list[Measured]) -> str:
    head = (
        "| N | snapshots | observe module | wall | tool CPU | in observe | in build_plan | "
        "sandbox CPU | requests (DO / Hetzner) | targets planned |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        by = Counter(p for p, _, _ in r.requests)
        lines.append(
            f"| {r.size:,} | {r.snapshots:,} | {r.label} | {r.wall:.2f} s | {r.cpu:.2f} s | "
            f"{r.observe:.2f} s | {r.build_plan:.2f} s | "
            f"{r.sandbox_cpu:.2f} s | "
            f"{len(r.requests):,} ({by['digitalocean']:,} / {by['hetzner']:,}) | {r.targets:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1000, 4000],
        metavar="N",
        help="fleet sizes (default: 1000 4000)",
    )
    parser.add_argument(
        "--snapshots", type=int, default=20, help="snapshots per server (default 20)"
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds added to every provider request (default 0)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the fleet (default 7)")
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="also plan with the `observe` of this module file, on the same sandbox",
    )
    parser.add_argument(
        "--page-readers",
        type=int,
        metavar="N",
        help=(
            f"pages of one listing read at a time (default {paging.PAGE_READERS}; "
            "1: one after another)"
        ),
    )
    args = parser.parse_args()
    if args.page_readers is not None:
        paging.PAGE_READERS = max(1, args.page_readers)

    import hcloud  # noqa: F401 — the SDKs' import time is not the plan's
    import pydo  # noqa: F401

    candidates = [("current", run.observe)]
    if args.baseline:
        candidates.insert(0, ("baseline", load_observe(args.baseline)))
    print(
        f"{args.snapshots} snapshots per server (60% ours), "
        f"latency {args.latency * 1000:g} ms per request, seed {args.seed}, "
        f"{paging.PAGE_READERS} page(s) of a listing at a time, "
        f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}",
        flush=True,
    )
    rows: list[Measured] = []
    for size in args.sizes:
        state = fleet(size, args.snapshots, args.seed)
        sandbox = ChildSandbox(state, args.latency)
        saved = {k: os.environ.get(k) for k in (*sandbox.env, "BENCH_DO_TOKEN", "BENCH_HZ_TOKEN")}
        os.environ.update({**sandbox.env, "BENCH_DO_TOKEN": DO_TOKEN, "BENCH_HZ_TOKEN": HZ_TOKEN})
        try:
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch)
                (folder / "run").mkdir()
                (folder / "policy.yaml").write_text(policy_text(state, folder))
                measured = [
                    measure_plan(label, observe, sandbox, folder, state)
                    for label, observe in candidates
                ]
        finally:
            sandbox.stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        if len({m.digest for m in measured}) != 1:
            print(f"  N={size}: the plans differ between observe modules!", file=sys.stderr)
        rows += measured
        print("\n".join(table(measured).splitlines()[2:]), file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
