r"""Restore drills at the rate limit: `snapshot-policy drill` over N targets in the sandbox.

For each number of targets N, boot time B and `drills_per_account` P, this seeds N servers
(half on a DigitalOcean account, half on a Hetzner project; each with three snapshots the
tool made and one manual one) in a sandbox that enforces the clouds' documented rate limits —
DigitalOcean 5,000 requests an hour and 250 in any minute, Hetzner 3,600 an hour refilled
one a second — and whose new servers boot for B seconds; writes a policy with one target per
server, each with `drill: {every: 7d, probe: [true]}`; and runs the console command `drill`
in a child process, as cron would (`--command apply` runs `apply` instead, its drills due
because none was ever run, after a snapshot of every server).

Reported per run: wall time against the *limit* — B times the rounds the busier account needs
(ceil(drills per account / P)) plus the time its unavoidable requests take at its budget
(`rate_seconds`); API requests per drill against the *floor* — the shared listings (servers,
snapshots and machine types, page by page, and one listing of drill servers before the first
drill, for what earlier runs left), one drill-server listing per account per round, and per
drill one create, one re-read and one delete, and one mark of the snapshot (the tag or label
that says it passed; DigitalOcean also creates that tag once per run); poll requests (drill-
server listings, action reads, server reads) per account per minute; 429 answers; peak memory
of the child (wait4). After each run the sandbox is read: every drill server must be gone and
every drilled snapshot marked; a leftover drill server fails the run (printed, and this
script exits 1).

    python benchmarks/drills.py --sizes 10 100 --boot-seconds 5 30          # ~20 min
    python benchmarks/drills.py --sizes 100 --boot-seconds 30 --per-account 2 5 10
    python benchmarks/drills.py --sizes 10 --boot-seconds 5 --command apply --breakdown
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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from snapshot_policy.sandbox import Sandbox  # noqa: E402
from tests import factories  # noqa: E402
from tests.e2e.policies import policy_yaml  # noqa: E402

DO_TOKEN, HZ_TOKEN = "benchmark-do-token", "benchmark-hz-token"
ACCOUNTS = {
    "do": {"provider": "digitalocean", "token": "env:BENCH_DO_TOKEN"},
    "hz": {"provider": "hetzner", "token": "env:BENCH_HZ_TOKEN"},
}
DO_PER_MINUTE, DO_PER_HOUR, HZ_PER_HOUR = 250, 5000, 3600
PAGE = {"do": 200, "hz": 50}
HZ_NETWORK = 7
ACTION_SECONDS = 2.0
"""How long a snapshot takes (`--command apply` makes one of every server)."""
DRILL_TAG, DRILL_LABEL = "snapshot-policy-drill", "snapshot-policy/drill"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
KINDS = ("list", "types", "drill-list", "action", "create", "reread", "delete", "mark", "snap")


# -- the fleet -------------------------------------------------------------------------------


def fleet(size: int) -> dict:
    """N servers alternately on `do` (web-N) and `hz` (app-N), each with three of our
    snapshots (one a day back) and one manual one; the clouds' real rate limits."""
    accounts = factories.cloud_accounts(DO_TOKEN, HZ_TOKEN, rate_limit=DO_PER_HOUR)
    accounts[0].update(burst_limit=DO_PER_MINUTE)
    accounts[1].update(rate_limit=HZ_PER_HOUR)
    state: dict = {"accounts": accounts, "servers": [], "snapshots": []}
    for n in range(size):
        account, server_id, name = (
            ("do", 100_000 + n, f"web-{n}") if n % 2 == 0 else ("hz", 200_000 + n, f"app-{n}")
        )
        state["servers"].append({"account": account, "id": server_id, "name": name})
        for k in range(4):
            created = NOW - timedelta(days=k + 1, minutes=n % 60)
            snapshot = {"account": account, "server_id": server_id, "created": created.isoformat()}
            if k < 3:
                snapshot["name"] = f"{name}-{created:%Y%m%d%H%M%S}"
                factories.mark_ours(snapshot)
            else:
                snapshot["name"] = f"{name}-before-upgrade"
            state["snapshots"].append(snapshot)
    return state


def policy_text(state: dict, per_account: int, probe: bool) -> str:
    """One target per server, each drilled weekly (a probe that passes, unless not `probe`),
    with no public address: on Hetzner in a private network."""
    drill: dict = {"every": "7d", "boot_timeout": 600}
    if probe:
        drill["probe"] = ["true"]
    # Hetzner refuses a server with neither a public address nor a network (README).
    private = {"do": drill, "hz": {**drill, "networks": [HZ_NETWORK]}}
    targets = [
        {
            "name": s["name"],
            "account": s["account"],
            "ids": [s["id"]],
            "drill": private[s["account"]],
        }
        for s in state["servers"]
    ]
    return policy_yaml(
        *targets,
        accounts=ACCOUNTS,
        defaults={"schedule": {"every": "24h"}, "retention": {"keep_last": 10}},
        settings={
            "lock_file": "run/lock",
            "audit_log": "run/audit.jsonl",
            "log": {"file": "run/snapshot-policy.log", "level": "INFO"},
            "drills_per_account": per_account,
        },
    )


# -- the limit and the floor -----------------------------------------------------------------


def listing_pages(state: dict, account: str) -> int:
    """Pages of the listings every run reads: servers, snapshots, machine types (one page
    each of the sandbox's catalogues) and the drill servers before the first drill."""
    servers = sum(s["account"] == account for s in state["servers"])
    snapshots = sum(s["account"] == account for s in state["snapshots"])
    return -(-servers // PAGE[account]) + -(-snapshots // PAGE[account]) + 1 + 1


def rounds(drills: int, per_account: int) -> int:
    return -(-drills // per_account)


def floor_requests(state: dict, account: str, per_account: int, command: str) -> int:
    """The requests of `account` no run can avoid (see the module docstring)."""
    drills = sum(s["account"] == account for s in state["servers"])
    per_drill = 1 + 2 + 1  # create; re-read and delete; mark
    tag_create = 1 if account == "do" else 0  # the result tag, once per run
    snapshots = drills if command == "apply" else 0  # apply: one start per server
    return (
        listing_pages(state, account)
        + rounds(drills, per_account)
        + per_drill * drills
        + tag_create
        + snapshots
    )


def rate_seconds(requests: dict[str, int]) -> float:
    """The time the busier account needs for its unavoidable requests at its budget:
    DigitalOcean's 250 a minute is a sliding window (past 250 requests the next ones wait
    until a minute after the first); Hetzner's 3,600 are spent at once, then one a second."""
    do_seconds = 60 * ((requests["do"] - 1) // DO_PER_MINUTE)
    hz_seconds = max(0, requests["hz"] - HZ_PER_HOUR) / (HZ_PER_HOUR / 3600)
    return max(do_seconds, hz_seconds)


# -- reading the request log -----------------------------------------------------------------

_ID = r"/\d+"


def kind_of(request: dict) -> str:
    """What a logged request was for: the shared listings, the machine types, the drill
    servers' listing, an action read, a drill's create, re-read or delete, a snapshot's mark,
    a snapshot's start (apply)."""
    method, path, query = request["method"], request["path"], request.get("query") or {}
    if method == "POST" and path in ("/v2/droplets", "/v1/servers"):
        return "create"
    if method == "DELETE" and re.fullmatch(rf"/v2/droplets{_ID}|/v1/servers{_ID}", path):
        return "delete"
    if method == "GET" and re.fullmatch(rf"/v2/droplets{_ID}|/v1/servers{_ID}", path):
        return "reread"
    if method == "GET" and path in ("/v2/droplets", "/v1/servers"):
        if query.get("tag_name") == DRILL_TAG or query.get("label_selector") == DRILL_LABEL:
            return "drill-list"
        return "list"
    if method == "GET" and path in ("/v2/snapshots", "/v1/images"):
        return "list"
    if method == "GET" and path in ("/v2/sizes", "/v1/server_types"):
        return "types"
    if method == "GET" and re.fullmatch(rf"/v2/actions({_ID})?|/v1/actions({_ID})?", path):
        return "action"
    if re.match(r"/v2/tags", path) or re.fullmatch(rf"/v1/images{_ID}", path):
        return "mark"
    if method == "POST" and re.fullmatch(
        rf"/v2/droplets{_ID}/actions|/v1/servers{_ID}/actions/create_image", path
    ):
        return "snap"
    return "other"


def endpoint_of(request: dict) -> str:
    query = request.get("query") or {}
    shown = {k: v for k, v in query.items() if k in ("tag_name", "label_selector", "name")}
    suffix = "?" + "&".join(f"{k}=…" if k == "name" else f"{k}={v}" for k, v in shown.items())
    return f"{request['method']} {re.sub(_ID, '/{id}', request['path'])}" + (
        suffix if shown else ""
    )


# -- one run ---------------------------------------------------------------------------------


@dataclass
class Run:
    size: int
    boot: float
    per_account: int
    command: str
    seconds: float
    exit_code: int
    rss_mib: float
    requests: list[dict]
    left: list[str]
    marked: int
    summary: str
    state: dict

    def of(self, account: str, kind: str | None = None) -> int:
        return sum(
            r["account"] == account and (kind is None or kind_of(r) == kind) for r in self.requests
        )

    def drills(self, account: str) -> int:
        return sum(s["account"] == account for s in self.state["servers"])

    def limit(self) -> float:
        floors = {a: floor_requests(self.state, a, self.per_account, self.command) for a in PAGE}
        busiest = max(rounds(self.drills(a), self.per_account) for a in PAGE)
        snapshot = ACTION_SECONDS if self.command == "apply" else 0.0
        return snapshot + self.boot * busiest + rate_seconds(floors)

    def floor(self) -> float:
        total = sum(floor_requests(self.state, a, self.per_account, self.command) for a in PAGE)
        return total / self.size


def drill_servers_left(sandbox: Sandbox) -> list[str]:
    with sandbox.state.lock:
        return [
            f"{s.account} {s.id} {s.name} ({s.status})"
            for s in sandbox.state.servers.values()
            if DRILL_TAG in s.tags or s.labels.get(DRILL_LABEL) == "true"
        ]


def snapshots_marked(sandbox: Sandbox) -> int:
    """Snapshots carrying a passed drill mark (a DigitalOcean tag, a Hetzner label)."""
    with sandbox.state.lock:
        return sum(
            any(t.startswith("snapshot-policy-drilled-passed-") for t in s.tags)
            or s.labels.get("snapshot-policy/drilled", "").startswith("passed-")
            for s in sandbox.state.snapshots.values()
        )


def measure(size: int, boot: float, per_account: int, args: argparse.Namespace) -> Run:
    state = fleet(size)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "policy.yaml").write_text(policy_text(state, per_account, not args.no_probe))
        sandbox = Sandbox(fleet(size), action_seconds=ACTION_SECONDS, boot_seconds=boot).start()
        try:
            env = {
                **os.environ,
                **sandbox.env(),
                "BENCH_DO_TOKEN": DO_TOKEN,
                "BENCH_HZ_TOKEN": HZ_TOKEN,
                "PYTHONPATH": str(ROOT),
            }
            with (folder / "output.txt").open("wb") as sink:
                started = time.monotonic()
                child = subprocess.Popen(
                    [sys.executable, "-m", "snapshot_policy", args.command, "--policy"]
                    + ["policy.yaml"],
                    cwd=folder,
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
                _, status, usage = os.wait4(child.pid, 0)
                seconds = time.monotonic() - started
            requests = [
                r for r in sandbox.requests() if r["provider"] in ("digitalocean", "hetzner")
            ]
            left, marked = drill_servers_left(sandbox), snapshots_marked(sandbox)
        finally:
            sandbox.stop()
        output = (folder / "output.txt").read_text(errors="replace")
        summary = next(
            (line for line in output.splitlines() if re.search(r"\d+ drill\(s\):", line)), ""
        )
        if args.keep_output:
            Path(args.keep_output).mkdir(parents=True, exist_ok=True)
            target = Path(args.keep_output) / f"{args.command}-{size}-{boot:g}-{per_account}.txt"
            target.write_text(output)
        run = Run(
            size,
            boot,
            per_account,
            args.command,
            seconds,
            os.waitstatus_to_exitcode(status),
            usage.ru_maxrss / 1024,
            requests,
            left,
            marked,
            summary.split(": ", 1)[-1] if summary else "",
            state,
        )
        if run.exit_code != 0:
            print("    " + "\n    ".join(output.splitlines()[-8:]), file=sys.stderr)
        return run


# -- output ----------------------------------------------------------------------------------

HEAD = (
    "| N | boot | per account | wall | limit | wall/limit | requests/drill | floor | ratio | "
    "polls/min (DO / Hz) | 429s | peak RSS | left | marked | exit |"
)


def row(run: Run) -> str:
    minutes = run.seconds / 60
    polls = " / ".join(
        f"{sum(run.of(a, k) for k in ('drill-list', 'action', 'reread')) / minutes:.0f}"
        for a in PAGE
    )
    too_many = sum(r["status"] == 429 for r in run.requests)
    per_drill = len(run.requests) / run.size
    left = "**" + str(len(run.left)) + "**" if run.left else "0"
    return (
        f"| {run.size} | {run.boot:g} s | {run.per_account} | {run.seconds:.1f} s | "
        f"{run.limit():.1f} s | {run.seconds / run.limit():.2f} | {per_drill:.2f} | "
        f"{run.floor():.2f} | {per_drill / run.floor():.2f} | {polls} | {too_many} | "
        f"{run.rss_mib:.0f} MiB | {left} | {run.marked}/{run.size} | {run.exit_code} |"
    )


def breakdown(run: Run) -> str:
    lines = [
        f"N={run.size}, boot {run.boot:g} s, {run.per_account} per account: requests per "
        f"kind and account (DO / Hz), then by endpoint; {run.summary}"
    ]
    for kind in KINDS:
        counts = [run.of(a, kind) for a in PAGE]
        if any(counts):
            lines.append(f"  {kind:10} {counts[0]:6} / {counts[1]:6}")
    counts = Counter((r["account"], endpoint_of(r)) for r in run.requests)
    for (account, endpoint), count in sorted(counts.items(), key=lambda c: (c[0][0], -c[1])):
        lines.append(f"    {account} {endpoint:60} {count:6}")
    statuses = Counter(r["status"] for r in run.requests)
    lines.append(f"  statuses: {dict(sorted(statuses.items(), key=lambda s: str(s[0])))}")
    refused = Counter((r["account"], endpoint_of(r)) for r in run.requests if r["status"] == 429)
    for (account, endpoint), count in sorted(refused.items()):
        lines.append(f"  429: {account} {endpoint} {count}")
    lines.append(
        "  most requests in any 60 s (DO / Hz): "
        + " / ".join(str(busiest_minute(run, a)) for a in PAGE)
    )
    return "\n".join(lines)


def busiest_minute(run: Run, account: str) -> int:
    """The most requests of `account` the cloud saw in any 60 seconds (DigitalOcean allows
    250), 429s included."""
    times = sorted(r["time"] for r in run.requests if r["account"] == account)
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= 60:
            first += 1
        most = max(most, last - first + 1)
    return most


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100], metavar="N")
    parser.add_argument("--boot-seconds", type=float, nargs="+", default=[5.0, 30.0], metavar="B")
    parser.add_argument(
        "--per-account",
        type=int,
        nargs="+",
        default=[2],
        metavar="P",
        help="settings.drills_per_account (default 2, the tool's default)",
    )
    parser.add_argument("--command", choices=("drill", "apply"), default="drill")
    parser.add_argument("--no-probe", action="store_true", help="drills without a probe")
    parser.add_argument("--breakdown", action="store_true", help="requests per endpoint")
    parser.add_argument("--keep-output", metavar="DIR", help="keep each run's console output")
    args = parser.parse_args()

    print(
        f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, `{args.command}`, limits: "
        f"DigitalOcean {DO_PER_HOUR}/h and {DO_PER_MINUTE}/min, Hetzner {HZ_PER_HOUR}/h",
        flush=True,
    )
    print(HEAD)
    print("|" + "---|" * (HEAD.count("|") - 1), flush=True)
    runs, failed = [], []
    for boot in args.boot_seconds:
        for size in args.sizes:
            for per_account in args.per_account:
                run = measure(size, boot, per_account, args)
                runs.append(run)
                print(row(run), flush=True)
                if run.left:
                    failed.append(run)
                    print(
                        f"    FAILED: {len(run.left)} drill server(s) left: "
                        + "; ".join(run.left[:10]),
                        flush=True,
                    )
                elif run.exit_code != 0:
                    failed.append(run)
                    print(f"    FAILED: exit {run.exit_code}: {run.summary}", flush=True)
    if args.breakdown:
        for run in runs:
            print()
            print(breakdown(run))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
