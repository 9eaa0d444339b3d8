r"""Issue 23's waiting actions at the rate limit: shutdown, copies and volumes over N servers.

"Waiting is not work": a run should take about one snapshot's duration whatever the fleet,
with requests near the floor. Issue 23 added three things that wait; for each, this seeds N
servers of one cloud in a sandbox that enforces the documented rate limits (DigitalOcean
5,000 an hour and 250 in any minute, Hetzner 3,600 an hour refilled one a second), each
server with three of our snapshots and a manual one, and runs `snapshot-policy apply` in a
child process, as cron would. One target per 100 servers (`ids`), `keep_last: 3`, so each
run makes one snapshot and deletes one per server (per volume too).

Scenarios (`--scenarios`):
  shutdown-do, shutdown-hz  `consistency: shutdown`: shut down, wait until off (one server
                            listing per account a round), snapshot, power on, wait until
                            running. The guest is off `--shutdown-seconds` after the request;
                            power on takes an action's time.
  copies                    DigitalOcean `copies: [{region: ams3}]`: transfer the new
                            snapshot, waited with batched polls (`--transfer-seconds`), then
                            prune.
  volumes                   DigitalOcean `volumes: true`: each droplet has one attached
                            volume; its snapshot's reply is the finished snapshot.

Reported per run: wall time against the *limit* — what the cloud makes the run wait (shutdown:
shutdown + snapshot + power on; copies: snapshot + transfer; volumes: snapshot) plus the time
the account needs, at its budget, for the floor's requests (past 250 DigitalOcean requests the
next ones wait until a minute after the first); requests per server against the *floor*:

  listings   the server and snapshot listings, page by page, and the "already busy?" one
             (volumes: also the volume and volume-snapshot listings)
  per server one create, one delete of the expired snapshot; shutdown: one shutdown, one power
             on; copies: one transfer per region; volumes: one volume snapshot, one delete
  per account one poll round of the snapshots (DigitalOcean also one tag request for them);
             shutdown: two server listings (seen off, seen running); copies: one transfer poll

*waits* = the poll requests per account (server listings while waiting for power, action
polls, transfer polls); *busiest DO minute* = most DigitalOcean requests in any 60 s; 429s;
*end* = the sandbox read after the run: every server running (shutdown), every new snapshot
in ams3 (copies), every volume with its new snapshot (volumes).

    python benchmarks/issue23.py                                   # N = 1 10 100, ~10 min
    python benchmarks/issue23.py --sizes 10 --scenarios shutdown-hz --breakdown
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
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
OWNER = "bench"
KEEP_LAST = 3
IDS_PER_TARGET = 100
COPY_REGION = "ams3"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
SCENARIOS = ("shutdown-do", "shutdown-hz", "copies", "volumes")
_ID = r"/(?:[0-9a-f]{8}-[0-9a-f-]{27}|\d+)"


# -- the fleet -------------------------------------------------------------------------------


def account_of(scenario: str) -> str:
    return "hz" if scenario.endswith("-hz") else "do"


def fleet(size: int, scenario: str) -> dict:
    """N servers of one cloud, each with three of our snapshots (a day apart) and a manual
    one; for `volumes` one attached volume each with the same. The clouds' real limits."""
    account = account_of(scenario)
    accounts = factories.cloud_accounts(DO_TOKEN, HZ_TOKEN, rate_limit=DO_PER_HOUR)
    accounts[0].update(burst_limit=DO_PER_MINUTE)
    accounts[1].update(rate_limit=HZ_PER_HOUR)
    state: dict = {"accounts": accounts, "servers": [], "snapshots": []}
    if scenario == "volumes":
        state.update(volumes=[], volume_snapshots=[])
    for n in range(size):
        server_id, name = (
            (100_000 + n, f"web-{n}") if account == "do" else (200_000 + n, f"app-{n}")
        )
        state["servers"].append({"account": account, "id": server_id, "name": name})
        for k in range(4):
            created = NOW - timedelta(days=k + 1, minutes=n % 60)
            snapshot = {"account": account, "server_id": server_id, "created": created.isoformat()}
            if k < 3:
                snapshot["name"] = f"{name}-{created:%Y%m%d%H%M%S}"
                mark_ours(snapshot)
            else:
                snapshot["name"] = f"{name}-before-upgrade"
            state["snapshots"].append(snapshot)
        if scenario == "volumes":
            volume = str(uuid.uuid5(uuid.NAMESPACE_OID, f"volume-{n}"))
            state["volumes"].append(
                {"account": "do", "id": volume, "name": "data", "droplet_ids": [server_id]}
            )
            for k in range(4):
                created = NOW - timedelta(days=k + 1, minutes=n % 60)
                state["volume_snapshots"].append(
                    {
                        "account": "do",
                        "volume_id": volume,
                        "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"volume-{n}-{k}")),
                        "name": (
                            f"{name}-data-{created:%Y%m%d%H%M%S}"
                            if k < 3
                            else f"{name}-data-before-upgrade"
                        ),
                        "created": created.isoformat(),
                        "tags": ["snapshot-policy", f"snapshot-policy-owner-{OWNER}"]
                        if k < 3
                        else [],
                    }
                )
    return state


def mark_ours(snapshot: dict) -> None:
    """Our marker and this configuration's owner, as the tool writes them."""
    factories.mark_ours(snapshot)
    if snapshot["account"] == "do":
        snapshot["tags"].append(f"snapshot-policy-owner-{OWNER}")
    else:
        snapshot["labels"]["snapshot-policy/owner"] = OWNER


def policy_text(state: dict, scenario: str) -> str:
    extra: dict = {
        "shutdown-do": {"consistency": "shutdown"},
        "shutdown-hz": {"consistency": "shutdown"},
        "copies": {"copies": [{"region": COPY_REGION}]},
        "volumes": {"volumes": True},
    }[scenario]
    account = account_of(scenario)
    ids = [s["id"] for s in state["servers"]]
    targets = [
        {
            "name": f"{account}-{start // IDS_PER_TARGET}",
            "account": account,
            "ids": ids[start : start + IDS_PER_TARGET],
            **extra,
        }
        for start in range(0, len(ids), IDS_PER_TARGET)
    ]
    return policy_yaml(
        *targets,
        accounts={account: ACCOUNTS[account]},
        defaults={
            "retention": {"keep_last": KEEP_LAST},
            "safety": {"max_deletions": 5 * IDS_PER_TARGET},
        },
        settings={
            "owner": OWNER,
            "lock_file": "run/lock",
            "log": {"file": "run/snapshot-policy.log", "level": "INFO"},
        },
    )


# -- the limit and the floor -----------------------------------------------------------------


def pages(count: int, account: str) -> int:
    return max(1, -(-count // PAGE[account]))


def floor_requests(state: dict, scenario: str) -> int:
    """The requests no run of `scenario` can avoid (see the module docstring)."""
    account = account_of(scenario)
    servers, snapshots = len(state["servers"]), len(state["snapshots"])
    # servers, snapshots, "already busy?", the drill servers left (Hetzner: its price list)
    listings = pages(servers, account) + pages(snapshots, account) + 2 + (account == "hz")
    per_server = 1 + 1  # create, delete the expired one
    # a poll round; DigitalOcean: our two tags made once a run and assigned once a round
    per_account = 1 + (4 if account == "do" else 0)
    if scenario.startswith("shutdown"):
        per_server += 2  # shutdown, power on
        per_account += 2 * pages(servers, account)  # seen off, seen running
    elif scenario == "copies":
        per_server += 1  # one transfer
        per_account += 1  # one transfer poll
    elif scenario == "volumes":
        per_server += 2  # the volume's snapshot, its expired one deleted
        listings += pages(len(state["volumes"]), "do") + pages(len(state["volume_snapshots"]), "do")
    return listings + per_account + per_server * servers


def rate_seconds(requests: int, account: str) -> float:
    """The time `requests` take at the account's budget: DigitalOcean's 250 a minute is a
    sliding window; Hetzner's 3,600 are spent at once, then one a second."""
    if account == "do":
        return 60 * ((requests - 1) // DO_PER_MINUTE)
    return max(0, requests - HZ_PER_HOUR) / (HZ_PER_HOUR / 3600)


def waited(scenario: str, args: argparse.Namespace) -> float:
    """What the cloud makes one server's run wait, without any request of ours."""
    if scenario.startswith("shutdown"):
        return args.shutdown_seconds + 2 * args.action_seconds  # off, snapshot, power on
    if scenario == "copies":
        return args.action_seconds + args.transfer_seconds
    return args.action_seconds


# -- reading the request log -----------------------------------------------------------------


def endpoint_of(request: dict) -> str:
    query = request.get("query") or {}
    keys = ("resource_type", "tag_name", "label_selector", "status")
    shown = {k: v for k, v in query.items() if k in keys}
    suffix = "?" + "&".join(f"{k}={v}" for k, v in shown.items()) if shown else ""
    return f"{request['method']} {re.sub(_ID, '/{id}', request['path'])}{suffix}"


def is_wait(request: dict) -> bool:
    """An action or transfer poll (the power waits' server listings: `power_listings`)."""
    method, path = request["method"], request["path"]
    return method == "GET" and bool(
        re.fullmatch(rf"/v2/actions({_ID})?|/v1/actions({_ID})?|/v2/images{_ID}/actions", path)
    )


def busiest_minute(requests: list[dict], account: str) -> int:
    times = sorted(r["time"] for r in requests if r["account"] == account)
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= 60:
            first += 1
        most = max(most, last - first + 1)
    return most


# -- one run ---------------------------------------------------------------------------------


@dataclass
class Run:
    scenario: str
    size: int
    seconds: float
    exit_code: int
    requests: list[dict]
    floor: int
    limit: float
    end: str
    ok: bool
    tail: str
    downtime: list[float]


def end_state(sandbox: Sandbox, scenario: str, before: dict) -> tuple[str, bool]:
    """What the sandbox holds after the run, against what the run had to leave."""
    state = sandbox.dump_state()
    size = len(state["servers"])
    if scenario.startswith("shutdown"):
        running = sum(s.get("status", "running") == "running" for s in state["servers"])
        made = new_snapshots(before, state, "snapshots")
        return f"{running}/{size} running, {len(made)} made", running == size == len(made)
    if scenario == "copies":
        made = new_snapshots(before, state, "snapshots")
        copied = sum(COPY_REGION in (s.get("copies") or []) for s in made)
        return f"{copied}/{size} copied", copied == size == len(made)
    made = new_snapshots(before, state, "volume_snapshots")
    volumes = {s["volume_id"] for s in made}
    return f"{len(volumes)}/{size} volumes", len(volumes) == size == len(made)


def new_snapshots(before: dict, after: dict, key: str) -> list[dict]:
    old = {s["id"] for s in before[key]}
    return [s for s in after[key] if s["id"] not in old]


def measure(size: int, scenario: str, args: argparse.Namespace) -> Run:
    state = fleet(size, scenario)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "policy.yaml").write_text(policy_text(state, scenario))
        sandbox = Sandbox(fleet(size, scenario), action_seconds=args.action_seconds).start()
        sandbox.state.shutdown_seconds = args.shutdown_seconds
        sandbox.state.transfer_seconds = args.transfer_seconds
        try:
            before = sandbox.dump_state()
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
                    [sys.executable, "-m", "snapshot_policy", "apply", "--policy", "policy.yaml"]
                    + ["--report", "report.json"],
                    cwd=folder,
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
                _, status, _ = os.wait4(child.pid, 0)
                seconds = time.monotonic() - started
            requests = [
                r for r in sandbox.requests() if r["provider"] in ("digitalocean", "hetzner")
            ]
            end, ok = end_state(sandbox, scenario, before)
        finally:
            sandbox.stop()
        output = (folder / "output.txt").read_text(errors="replace")
        downtime = downtimes(folder / "report.json")
        if args.keep_output:
            Path(args.keep_output).mkdir(parents=True, exist_ok=True)
            (Path(args.keep_output) / f"{scenario}-{size}.txt").write_text(output)
    account = account_of(scenario)
    floor = floor_requests(state, scenario)
    limit = waited(scenario, args) + rate_seconds(floor, account)
    tail = "\n    ".join(output.splitlines()[-6:])
    return Run(
        scenario,
        size,
        seconds,
        os.waitstatus_to_exitcode(status),
        requests,
        floor,
        limit,
        end,
        ok,
        tail,
        downtime,
    )


def downtimes(report: Path) -> list[float]:
    """Each server's time off (consistency: shutdown), from the run's report."""
    if not report.exists():
        return []
    found: list[float] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "downtime_seconds" and isinstance(value, (int, float)):
                    found.append(float(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(report.read_text()))
    return sorted(found)


# -- output ----------------------------------------------------------------------------------

HEAD = (
    "| scenario | N | wall | limit | wall/limit | requests/server | floor | ratio | "
    "waits | busiest DO minute | 429s | downtime median / max | end | exit |"
)


def row(run: Run) -> str:
    per_server = len(run.requests) / run.size
    floor = run.floor / run.size
    waits = sum(is_wait(r) for r in run.requests) + power_listings(run)
    busiest = busiest_minute(run.requests, "do") if account_of(run.scenario) == "do" else "—"
    too_many = sum(r["status"] == 429 for r in run.requests)
    end = run.end if run.ok else f"**{run.end}**"
    off = run.downtime
    downtime = f"{off[len(off) // 2]:.1f} / {off[-1]:.1f} s" if off else "—"
    return (
        f"| {run.scenario} | {run.size} | {run.seconds:.1f} s | {run.limit:.1f} s | "
        f"{run.seconds / run.limit:.2f} | {per_server:.2f} | {floor:.2f} | "
        f"{per_server / floor:.2f} | {waits} | {busiest} | {too_many} | {downtime} | {end} | "
        f"{run.exit_code} |"
    )


def power_listings(run: Run) -> int:
    """Server listings beyond the first page set (the power waits of consistency: shutdown)."""
    if not run.scenario.startswith("shutdown"):
        return 0
    account = account_of(run.scenario)
    listing = "/v2/droplets" if account == "do" else "/v1/servers"
    made = sum(r["method"] == "GET" and r["path"] == listing for r in run.requests)
    return max(0, made - pages(run.size, account))


def breakdown(run: Run) -> str:
    lines = [f"{run.scenario}, N={run.size}: requests by endpoint (per server)"]
    counts = Counter(endpoint_of(r) for r in run.requests)
    for endpoint, count in counts.most_common():
        lines.append(f"  {endpoint:60} {count:6}  ({count / run.size:.2f})")
    statuses = Counter(r["status"] for r in run.requests)
    lines.append(f"  statuses: {dict(sorted(statuses.items(), key=lambda s: str(s[0])))}")
    refused = Counter(endpoint_of(r) for r in run.requests if r["status"] == 429)
    for endpoint, count in refused.most_common():
        lines.append(f"  429: {endpoint} {count}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100], metavar="N")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--action-seconds", type=float, default=2.0, metavar="S")
    parser.add_argument("--shutdown-seconds", type=float, default=2.0, metavar="S")
    parser.add_argument("--transfer-seconds", type=float, default=2.0, metavar="S")
    parser.add_argument("--breakdown", action="store_true", help="requests per endpoint")
    parser.add_argument("--keep-output", metavar="DIR", help="keep each run's console output")
    args = parser.parse_args()

    print(
        f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, load "
        f"{os.getloadavg()[0]:.1f}; actions {args.action_seconds:g} s, shutdown "
        f"{args.shutdown_seconds:g} s, transfers {args.transfer_seconds:g} s; limits: "
        f"DigitalOcean {DO_PER_HOUR}/h and {DO_PER_MINUTE}/min, Hetzner {HZ_PER_HOUR}/h",
        flush=True,
    )
    print(HEAD)
    print("|" + "---|" * (HEAD.count("|") - 1), flush=True)
    runs, failed = [], False
    for scenario in args.scenarios:
        for size in args.sizes:
            run = measure(size, scenario, args)
            runs.append(run)
            print(row(run), flush=True)
            if run.exit_code != 0 or not run.ok:
                failed = True
                print(f"    FAILED:\n    {run.tail}", flush=True)
    if args.breakdown:
        for run in runs:
            print()
            print(breakdown(run))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
