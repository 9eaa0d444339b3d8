"""plan and apply over fleets of N servers against the sandbox: time, API requests, memory.

For each fleet size N (default 10, 100 and 1000) this starts a local sandbox whose every
DigitalOcean and Hetzner request is delayed by `--latency` seconds (a `delay` fault with no
count limit) and whose snapshot actions take `--action-seconds`, seeds N servers — half on
each provider, 5 to 20 snapshots each, a seeded random mix of snapshots the tool manages
and manual ones it must leave alone — writes a YAML policy for them, and runs the real
console command in a child process, as cron would:

1. `snapshot-policy plan` (reads only);
2. `snapshot-policy apply` with the default parallelism (the policy's, else 4 per account);
3. `snapshot-policy apply --parallel 1` on an identical fresh sandbox: the sequential baseline.

It prints one table with wall time, peak memory (max RSS of the child process), API
requests in total and per server by endpoint kind, the requests per server that cannot be
avoided, and the speed-up of the default parallelism over the sequential baseline. Each
sandbox account gets a huge rate limit, so the sandbox's own limiter never answers 429.

    python benchmarks/fleet.py                                  # N = 10, 100, 1000
    python benchmarks/fleet.py --sizes 10 100 --latency 0.01 --action-seconds 1
    python benchmarks/fleet.py --sizes 100 --no-sequential --breakdown

Endpoint kinds (from the sandbox's request log):
  list    account-wide listings, shared by all servers of an account: servers, snapshots
  create  the snapshot start: DigitalOcean POST /v2/droplets/ID/actions, Hetzner POST
          /v1/servers/ID/actions/create_image
  lookup  reads around the starts: "is a snapshot already running?" (Hetzner's running
          server actions; the engine before issue 13 also read each droplet's actions and
          snapshot list)
  poll    the wait: the batched action reads (DigitalOcean's account action listing,
          Hetzner's GET /v1/actions?id=…) and any single action or image GET
  delete  DELETE of an expired snapshot
  tag     our marker where it is not set at creation: DigitalOcean tag create and assign
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from snapshot_policy.sandbox import Sandbox  # noqa: E402
from tests import factories  # noqa: E402
from tests.e2e.policies import policy_yaml  # noqa: E402

DO_TOKEN = "benchmark-do-token"
HZ_TOKEN = "benchmark-hz-token"
ACCOUNTS = {  # the policy's accounts: the tokens come from the environment of the child process
    "do": {"provider": "digitalocean", "token": "env:BENCH_DO_TOKEN"},
    "hz": {"provider": "hetzner", "token": "env:BENCH_HZ_TOKEN"},
}
NOW = datetime.now(timezone.utc).replace(microsecond=0)
KINDS = ("list", "create", "lookup", "poll", "delete", "tag")
KEEP_LAST = 5
IDS_PER_TARGET = 100
# max_deletions counts a target's deletions across its servers: 20 a server's worth.
MAX_DELETIONS = 20 * IDS_PER_TARGET


# -- the fleet -------------------------------------------------------------------------------


def fleet(size: int, seed: int, low: int, high: int) -> tuple[dict, int]:
    """Return the sandbox state of a fleet of `size` servers (tests/factories.py), and how many
    snapshots apply should delete. Per server, `low`..`high` snapshots, 60 % of them ours."""
    state = factories.fleet(
        size,
        seed=seed,
        now=NOW,
        snapshots=lambda rng: rng.randint(low, high),
        tokens=(DO_TOKEN, HZ_TOKEN),
    )
    ours = Counter(s["server_id"] for s in state["snapshots"] if "tags" in s or "labels" in s)
    # The new snapshot counts among the kept.
    return state, sum(max(0, count - (KEEP_LAST - 1)) for count in ours.values())


def policy_text(state: dict) -> str:
    """A policy with one target per 100 servers, selected by ids (no per-target listing)."""
    targets = []
    for account in ("do", "hz"):
        ids = [s["id"] for s in state["servers"] if s["account"] == account]
        for start in range(0, len(ids), IDS_PER_TARGET):
            chunk = ids[start : start + IDS_PER_TARGET]
            targets.append(
                {"name": f"{account}-{start // IDS_PER_TARGET}", "account": account, "ids": chunk}
            )
    return policy_yaml(
        *targets,
        accounts=ACCOUNTS,
        defaults={
            "retention": {"keep_last": KEEP_LAST},
            "safety": {"max_deletions": MAX_DELETIONS},
        },
        settings={
            "lock_file": "run/lock",
            "log": {"file": "run/snapshot-policy.log", "level": "INFO"},
            "request_timeout": 30,
        },
    )


# -- one command against one sandbox ---------------------------------------------------------


@dataclass
class Measured:
    seconds: float
    max_rss_mib: float
    exit_code: int
    requests: list[dict] = field(default_factory=list)


def run_cli(sandbox: Sandbox, folder: Path, args: list[str]) -> Measured:
    """Run `python -m snapshot_policy ARGS` in `folder` against `sandbox`; time it and read
    its own peak RSS from wait4 (not a running maximum over all children)."""
    env = {
        **os.environ,
        **sandbox.env(),
        "BENCH_DO_TOKEN": DO_TOKEN,
        "BENCH_HZ_TOKEN": HZ_TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    sandbox.clear_requests()
    output = folder / "output.txt"
    with output.open("wb") as sink:
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "snapshot_policy", *args],
            cwd=folder,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    rss_kib = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)
    return Measured(seconds, rss_kib / 1024, child.returncode, sandbox.requests())


def start_sandbox(state: dict, latency: float, action_seconds: float) -> Sandbox:
    sandbox = Sandbox(state, action_seconds=action_seconds).start()
    for service in ("digitalocean", "hetzner"):
        sandbox.inject("delay", service=service, seconds=latency, count=None)
    return sandbox


# -- reading the request log -----------------------------------------------------------------

_ID = r"/\d+"


def kind_of(request: dict) -> str:
    """The endpoint kind of one logged request (see the module docstring)."""
    method, path = request["method"], request["path"]
    if method == "DELETE":
        return "delete"
    if method == "POST" and re.fullmatch(
        rf"/v2/droplets{_ID}/actions|/v1/servers{_ID}/actions/create_image", path
    ):
        return "create"
    if re.match(r"/v2/tags", path) or (method == "PUT" and re.fullmatch(rf"/v1/images{_ID}", path)):
        return "tag"
    if method == "GET" and re.fullmatch(
        rf"/v2/actions({_ID})?|/v1/actions({_ID})?|/v1/images{_ID}", path
    ):
        return "poll"
    if method == "GET" and re.fullmatch(
        rf"/v2/droplets{_ID}/(actions|snapshots)|/v1/servers/actions", path
    ):
        return "lookup"
    if method == "GET" and path in ("/v2/droplets", "/v2/snapshots", "/v1/servers", "/v1/images"):
        return "list"
    return "other"


def endpoint_of(request: dict) -> str:
    """`METHOD /path` with ids folded to {id}, for the breakdown."""
    return f"{request['method']} {re.sub(_ID, '/{id}', request['path'])}"


@dataclass
class Row:
    size: int
    plan: Measured
    apply: Measured
    sequential: Measured | None
    expired: int

    def per_server(self, kind: str) -> float:
        return sum(kind_of(r) == kind for r in self.apply.requests) / self.size

    def minimum(self) -> float:
        """The floor per server: its share of the listings as made, one start, one poll,
        one delete per expired snapshot (docs/promises.md §8 / issue 7)."""
        return self.per_server("list") + 1 + 1 + self.expired / self.size


def measure(size: int, args: argparse.Namespace) -> Row:
    state, expired = fleet(size, args.seed + size, args.snapshots[0], args.snapshots[1])
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "parallel"
        folder.mkdir()
        (folder / "policy.yaml").write_text(policy_text(state))
        sandbox = start_sandbox(state, args.latency, args.action_seconds)
        try:
            plan = run_cli(sandbox, folder, ["plan", "--policy", "policy.yaml", "--output", "json"])
            extra = [] if args.parallel is None else ["--parallel", str(args.parallel)]
            apply = run_cli(sandbox, folder, ["apply", "--policy", "policy.yaml", *extra])
        finally:
            sandbox.stop()
        for measured, what in ((plan, "plan"), (apply, "apply")):
            if measured.exit_code != 0:
                raise SystemExit(
                    f"N={size}: {what} exited {measured.exit_code}:\n"
                    f"{(folder / 'output.txt').read_text()[-3000:]}"
                )
        sequential = None
        if not args.no_sequential:
            folder = Path(scratch) / "sequential"
            folder.mkdir()
            (folder / "policy.yaml").write_text(policy_text(state))
            sandbox = start_sandbox(state, args.latency, args.action_seconds)
            try:
                sequential = run_cli(
                    sandbox, folder, ["apply", "--policy", "policy.yaml", "--parallel", "1"]
                )
            finally:
                sandbox.stop()
            if sequential.exit_code != 0:
                raise SystemExit(f"N={size}: apply --parallel 1 exited {sequential.exit_code}")
    return Row(size, plan, apply, sequential, expired)


# -- output ----------------------------------------------------------------------------------


def table(rows: list[Row], parallel: int | None) -> str:
    label = f"--parallel {parallel}" if parallel else "default parallel"
    head = (
        f"| N | plan | plan req | apply ({label}) | apply req | req/server | "
        + " | ".join(KINDS)
        + " | floor/server | peak RSS plan / apply | `--parallel 1` | speed-up |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        kinds = " | ".join(f"{row.per_server(k):.2f}" for k in KINDS)
        sequential = f"{row.sequential.seconds:.1f} s" if row.sequential else "—"
        ratio = f"{row.sequential.seconds / row.apply.seconds:.1f}x" if row.sequential else "—"
        lines.append(
            f"| {row.size} | {row.plan.seconds:.2f} s | {len(row.plan.requests)} | "
            f"{row.apply.seconds:.1f} s | "
            f"{len(row.apply.requests)} | {len(row.apply.requests) / row.size:.2f} | {kinds} | "
            f"{row.minimum():.2f} | "
            f"{row.plan.max_rss_mib:.0f} / {row.apply.max_rss_mib:.0f} MiB | "
            f"{sequential} | {ratio} |"
        )
    return "\n".join(lines)


def breakdown(row: Row) -> str:
    counts = Counter((kind_of(r), endpoint_of(r)) for r in row.apply.requests)
    lines = [
        f"N={row.size}: apply requests by endpoint ({row.expired} expired snapshots; "
        "per server in brackets)"
    ]
    for (kind, endpoint), count in sorted(
        counts.items(),
        key=lambda item: (KINDS.index(item[0][0]) if item[0][0] in KINDS else 99, -item[1]),
    ):
        lines.append(f"  {kind:7} {endpoint:45} {count:7}  ({count / row.size:.2f})")
    statuses = Counter(r["status"] for r in row.apply.requests)
    lines.append(f"  statuses: {dict(sorted(statuses.items(), key=lambda s: str(s[0])))}")
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
        default=[10, 100, 1000],
        metavar="N",
        help="fleet sizes (default: 10 100 1000)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.002,
        help="seconds added to every provider request (default 0.002)",
    )
    parser.add_argument(
        "--action-seconds",
        type=float,
        default=0.2,
        help="how long a snapshot action runs (default 0.2)",
    )
    parser.add_argument(
        "--snapshots",
        type=int,
        nargs=2,
        default=[5, 20],
        metavar=("MIN", "MAX"),
        help="snapshots per server (default 5 20)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the fleet (default 7)")
    parser.add_argument(
        "--parallel",
        type=int,
        default=None,
        help="--parallel for the measured apply (default: the tool's default)",
    )
    parser.add_argument(
        "--no-sequential", action="store_true", help="skip the --parallel 1 baseline"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also print apply's requests per endpoint"
    )
    args = parser.parse_args()

    print(
        f"latency {args.latency * 1000:g} ms per request, "
        f"snapshot actions {args.action_seconds:g} s, "
        f"{args.snapshots[0]}-{args.snapshots[1]} snapshots per server (60% managed), "
        f"keep_last {KEEP_LAST}, seed {args.seed}, "
        f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}",
        flush=True,
    )
    rows = []
    for size in args.sizes:
        started = time.monotonic()
        rows.append(measure(size, args))
        print(
            f"  N={size} measured in {time.monotonic() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    print(table(rows, args.parallel))
    if args.breakdown:
        for row in rows:
            print()
            print(breakdown(row))


if __name__ == "__main__":
    main()
