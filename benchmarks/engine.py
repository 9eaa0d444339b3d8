r"""apply at the rate limit: the engine against the sandbox enforcing each cloud's real limits.

For each fleet size N and snapshot duration S, this seeds the fleet of `fleet.py` (half the
servers on a DigitalOcean account, half on a Hetzner project, 5-20 snapshots each, keep_last
5) in a sandbox that enforces the documented rate limits — DigitalOcean 5,000 requests an
hour and 250 a minute, Hetzner 3,600 an hour refilled one a second — and runs the console
command `apply` in a child process, as cron would. With `--baseline REF` it runs the same
apply with the tool as of git REF (a worktree in a temporary folder) on an identical fresh
sandbox, so both engines are measured side by side in one run.

Reported per run: wall time, and the *limit* it is measured against — one snapshot's
duration plus the time the busier account needs, at its rate budget, for the requests no run
can avoid (see `computed_limit`); API requests per server against the *floor* (the listings'
share, one start, one delete per expired snapshot); poll requests per account per minute;
429 answers; peak memory (max RSS of the child, from wait4).

With `--latency S` every cloud request is answered S seconds late (a `delay` fault), and
`--only hetzner` (or digitalocean) seeds N servers of that cloud alone: what requests in
flight per account buy when replies are slow (issue 19, item 8).

    python benchmarks/engine.py --sizes 40 --action-seconds 2 --baseline 9e0a614
    python benchmarks/engine.py --sizes 10 100 1000 --action-seconds 2 60
    python benchmarks/engine.py --sizes 200 --only hetzner --latency 0.1 \
        --action-seconds 2 --baseline 220fcfb
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fleet import DO_TOKEN, HZ_TOKEN, fleet, kind_of, policy_text  # noqa: E402

from snapshot_policy.sandbox import Sandbox  # noqa: E402

DO_PER_MINUTE, DO_PER_HOUR, HZ_PER_HOUR = 250, 5000, 3600


def limited(state: dict) -> dict:
    """The fleet's accounts with the clouds' documented limits instead of fleet.py's huge ones."""
    for account in state["accounts"]:
        if account["provider"] == "digitalocean":
            account.update(rate_limit=DO_PER_HOUR, burst_limit=DO_PER_MINUTE)
        else:
            account.update(rate_limit=HZ_PER_HOUR)
    return state


def computed_limit(state: dict, expired_by_account: dict[str, int], action_seconds: float) -> float:
    """One snapshot's duration plus the time the busier account needs for the requests no run
    can avoid (its listings, one start per server, one delete per expired snapshot) at its
    budget. DigitalOcean's 250 a minute is a sliding window: past 250 requests, the next ones
    wait until a minute after the first, so C requests take 60 s for every 250 beyond the
    first 250. Hetzner's 3,600 are spent at once, then come back one a second."""
    servers = {a: [s for s in state["servers"] if s["account"] == a] for a in ("do", "hz")}
    snapshots = {a: sum(s["account"] == a for s in state["snapshots"]) for a in ("do", "hz")}
    do_requests = 2 + -(-snapshots["do"] // 200) + len(servers["do"]) + expired_by_account["do"]
    hz_requests = 2 + -(-snapshots["hz"] // 50) + len(servers["hz"]) + expired_by_account["hz"]
    do_seconds = 60 * ((do_requests - 1) // DO_PER_MINUTE)
    hz_seconds = max(0, hz_requests - HZ_PER_HOUR) / (HZ_PER_HOUR / 3600)
    return action_seconds + max(do_seconds, hz_seconds)


def expired_per_account(state: dict) -> dict[str, int]:
    """Managed snapshots beyond keep_last 5 (the new one counted), per account."""
    managed: dict[int, int] = {}
    for snapshot in state["snapshots"]:
        if snapshot.get("tags") or snapshot.get("labels"):
            managed[snapshot["server_id"]] = managed.get(snapshot["server_id"], 0) + 1
    account_of = {s["id"]: s["account"] for s in state["servers"]}
    found = {"do": 0, "hz": 0}
    for server, count in managed.items():
        found[account_of[server]] += max(0, count - 4)
    return found


def only(state: dict, provider: str | None) -> dict:
    """The fleet's servers and snapshots of one cloud alone (all of them without `provider`)."""
    if provider is None:
        return state
    accounts = {a["name"] for a in state["accounts"] if a["provider"] == provider}
    return {
        **state,
        "servers": [s for s in state["servers"] if s["account"] in accounts],
        "snapshots": [s for s in state["snapshots"] if s["account"] in accounts],
    }


def run_apply(
    state: dict, action_seconds: float, pythonpath: Path, folder: Path, latency: float = 0.0
) -> dict:
    folder.mkdir()
    (folder / "policy.yaml").write_text(policy_text(state))
    sandbox = Sandbox(limited(state), action_seconds=action_seconds).start()
    if latency:
        for service in ("digitalocean", "hetzner"):
            sandbox.inject("delay", service=service, seconds=latency, count=None)
    try:
        env = {
            **os.environ,
            **sandbox.env(),
            "BENCH_DO_TOKEN": DO_TOKEN,
            "BENCH_HZ_TOKEN": HZ_TOKEN,
            "PYTHONPATH": str(pythonpath),
        }
        with (folder / "output.txt").open("wb") as sink:
            started = time.monotonic()
            child = subprocess.Popen(
                [sys.executable, "-m", "snapshot_policy", "apply", "--policy", "policy.yaml"],
                cwd=folder,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.monotonic() - started
        requests = sandbox.requests()
    finally:
        sandbox.stop()
    return {
        "seconds": seconds,
        "exit": os.waitstatus_to_exitcode(status),
        "rss": usage.ru_maxrss / 1024,
        "requests": requests,
        "output": folder / "output.txt",
    }


def row(label: str, size: int, seconds_limit: float, floor: float, result: dict) -> str:
    requests = [r for r in result["requests"] if r["provider"] in ("digitalocean", "hetzner")]
    minutes = result["seconds"] / 60
    polls = {
        a: sum(kind_of(r) == "poll" and r["account"] == a for r in requests) for a in ("do", "hz")
    }
    per_minute = " / ".join(f"{polls[a] / minutes:.0f}" for a in ("do", "hz"))
    too_many = sum(r["status"] == 429 for r in requests)
    return (
        f"| {size} | {label} | {result['seconds']:.1f} s | {seconds_limit:.1f} s | "
        f"{result['seconds'] / seconds_limit:.2f} | "
        f"{len(requests) / size:.2f} | {floor:.2f} | {len(requests) / size / floor:.2f} | "
        f"{per_minute} | {too_many} | "
        f"{result['rss']:.0f} MiB | {result['exit']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], metavar="N")
    parser.add_argument("--action-seconds", type=float, nargs="+", default=[2.0, 60.0], metavar="S")
    parser.add_argument("--baseline", metavar="REF", help="also run the tool as of this git ref")
    parser.add_argument(
        "--baseline-limit",
        type=float,
        default=900,
        metavar="SECONDS",
        help="skip a baseline run expected to take longer (4 snapshots at a time per account)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="answer every cloud request this late (default: at once)",
    )
    parser.add_argument(
        "--only", choices=("digitalocean", "hetzner"), help="N servers of this cloud alone"
    )
    args = parser.parse_args()

    def seeded(size: int) -> dict:
        return only(fleet(size * (2 if args.only else 1), args.seed + size, 5, 20)[0], args.only)

    print(
        f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, "
        f"limits: DigitalOcean {DO_PER_HOUR}/h and {DO_PER_MINUTE}/min, Hetzner {HZ_PER_HOUR}/h, "
        f"latency {args.latency:g} s",
        flush=True,
    )
    print(
        "| N | engine | wall | limit | wall/limit | requests/server | floor | ratio | "
        "polls/min (DO / Hz) | 429s | peak RSS | exit |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        baseline = None
        if args.baseline:
            baseline = Path(scratch) / "baseline"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "add",
                    "--detach",
                    str(baseline),
                    args.baseline,
                ],
                check=True,
                capture_output=True,
            )
        try:
            for seconds in args.action_seconds:
                for size in args.sizes:
                    state = seeded(size)
                    expired = expired_per_account(state)
                    limit = computed_limit(state, expired, seconds)
                    listing = (
                        -(-sum(s["account"] == "do" for s in state["snapshots"]) // 200)
                        + -(-sum(s["account"] == "hz" for s in state["snapshots"]) // 50)
                        + 4
                    )
                    floor = (listing + size + sum(expired.values())) / size
                    runs = [("current", ROOT)]
                    if baseline is not None and -(-size // 2 // 4) * seconds <= args.baseline_limit:
                        runs.append((f"baseline {args.baseline}", baseline))
                    for label, path in runs:
                        result = run_apply(
                            seeded(size),
                            seconds,
                            path,
                            Path(scratch) / f"{label.split()[0]}-{size}-{seconds:g}",
                            args.latency,
                        )
                        print(
                            row(f"{label}, {seconds:g}-s actions", size, limit, floor, result),
                            flush=True,
                        )
                        if result["exit"] != 0:
                            print(
                                "    "
                                + "\n    ".join(result["output"].read_text().splitlines()[-5:]),
                                file=sys.stderr,
                            )
        finally:
            if baseline is not None:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)],
                    capture_output=True,
                )


if __name__ == "__main__":
    main()
