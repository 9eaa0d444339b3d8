"""Seeded random chaos: hundreds of apply runs over simulated days, random faults in each.

Every 4 simulated hours (6 runs a day) apply runs against a fleet of DigitalOcean and
Hetzner servers under four targets with different schedules, retention rules, time zones
and a small max_deletions, plus orphaned snapshots of a deleted server. Before most runs,
one to three faults of random kind, endpoint, count and probability are injected; now and
then an operator adds a manual snapshot (sometimes named exactly like ours, but unmarked)
or protects one of ours. The sandbox clock and the planning `now` advance together.

After every run: docs/promises.md §5 invariants 1, 2, 4, 5 (`harness.check_run`); over all runs,
invariant 6 (`Creations`); after every fault-free run, invariant 3
(`harness.check_retained`). The seed and run number of a failure are in its message.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from cronsim import CronSim

from snapshot_policy.core.model import Target
from snapshot_policy.output.render import report_summary
from tests.chaos.harness import (
    BOT_TOKEN,
    DO_TOKEN,
    HZ_TOKEN,
    REQUEST_TIMEOUT,
    World,
    check_retained,
    check_run,
)

START = datetime(2026, 3, 20, 0, 0, tzinfo=timezone.utc)  # crosses the change to summer time
STEP = timedelta(hours=4)

POLICY = """\
version: 1
accounts:
  do: {provider: digitalocean, token: env:CHAOS_DO_TOKEN, endpoint: "@DO@"}
  hz: {provider: hetzner, token: env:CHAOS_HZ_TOKEN, endpoint: "@HZ@"}
notifications:
  tg:
    {type: telegram, bot_token: env:CHAOS_BOT_TOKEN, chat_id: "-100123",
     timeout: 0.25, retries: 1, base_delay_between_retries: 0.01}
  hook:
    {type: webhook, url: "@HOOK@", secret: env:CHAOS_HOOK_SECRET,
     timeout: 0.25, retries: 1, base_delay_between_retries: 0.01}
targets:
  - name: web
    account: do
    ids: [101, 102]
    schedule: {every: 24h}
    retention: {keep_daily: 3, keep_weekly: 2}
    notify: [tg]
  - name: api
    account: do
    ids: [103]
    schedule: {every: 8h}
    retention: {keep_last: 4}
    safety: {max_deletions: 2}
    notify: [hook]
  - name: app
    account: hz
    ids: [201, 202]
    schedule: {cron: "0 */8 * * *"}
    timezone: Europe/Berlin
    retention: {keep_hourly: 4, keep_daily: 3}
    notify: [tg, hook]
  - name: db
    account: hz
    ids: [203]
    schedule: {every: 4h}
    retention: {keep_last: 3, keep_daily: 2}
settings:
  lock_file: "@FOLDER@/lock"
"""

SERVERS = {
    "do": {101: "web-1", 102: "web-2", 103: "api-1"},
    "hz": {201: "app-1", 202: "app-2", 203: "db-1", 299: "gone-1"},
}
KINDS = ("rate_limit", "error", "drop", "delay", "lose_reply", "fail_action")
ENDPOINTS = ("list", "create", "poll", "delete", "tag", "telegram", "webhook", "any")


def seed_state(rng: random.Random) -> dict:
    snapshots = []
    for account, servers in SERVERS.items():
        for server_id, name in servers.items():
            for days in sorted(rng.sample(range(1, 30), rng.randint(2, 6))):
                created = START - timedelta(days=days, hours=rng.randint(0, 23))
                snapshot = {
                    "account": account,
                    "server_id": server_id,
                    "server_name": name,
                    "name": f"{name}-{created:%Y%m%d%H%M%S}",
                    "created": created.isoformat(),
                }
                if account == "do":
                    snapshot["tags"] = ["snapshot-policy"]
                else:
                    snapshot["labels"] = {
                        "managed-by": "snapshot-policy",
                        "snapshot-policy/server-id": str(server_id),
                    }
                    snapshot["protected"] = rng.random() < 0.1
                snapshots.append(snapshot)
            snapshots.append(
                {
                    "account": account,
                    "server_id": server_id,
                    "server_name": name,
                    "name": f"{name} manual",
                    "created": (START - timedelta(days=40)).isoformat(),
                }
            )
    return {
        "accounts": [
            {"name": "do", "provider": "digitalocean", "tokens": [DO_TOKEN], "rate_limit": 10**9},
            {"name": "hz", "provider": "hetzner", "tokens": [HZ_TOKEN], "rate_limit": 10**9},
        ],
        "servers": [
            {"account": a, "id": i, "name": n}
            for a, servers in SERVERS.items()
            for i, n in servers.items()
            if i != 299
        ],
        "snapshots": snapshots,
        "telegram": {"bots": [{"token": BOT_TOKEN, "username": "chaos_bot"}]},
    }


class Creations:
    """Invariant 6: every snapshot the tool made, per server; never two in one interval."""

    def __init__(self) -> None:
        self.made: dict[str, list[tuple[datetime, str]]] = defaultdict(list)

    def add(self, target: Target, created: datetime, name: str) -> None:
        made = self.made[target.server_id]
        made.append((created, name))
        if len(made) < 2:
            return
        (previous, first), (latest, second) = made[-2], made[-1]
        if target.schedule.every:
            interval = target.schedule.every.as_timedelta()
            slack = min(interval * 0.1, timedelta(hours=1))
            assert latest - previous >= interval - slack, (
                f"{target.name}/{target.server_id}: {first} and {second} "
                f"inside one {interval} interval"
            )
        elif target.schedule.cron:
            zone = ZoneInfo(target.timezone)
            fired = [
                next(
                    CronSim(
                        target.schedule.cron,
                        (t + timedelta(seconds=1)).astimezone(zone),
                        reverse=True,
                    )
                )
                for t in (previous, latest)
            ]
            assert fired[0] != fired[1], (
                f"{target.name}/{target.server_id}: {first} and {second} "
                f"both after the cron firing of {fired[0]}"
            )


def random_faults(world: World, rng: random.Random) -> float:
    """Inject one to three random faults; return how long a delayed request may still take."""
    longest = 0.0
    for _ in range(rng.randint(1, 3)):
        kind, endpoint = rng.choice(KINDS), rng.choice(ENDPOINTS)
        count = rng.choice([1, 1, 2, 3, None])
        probability = rng.choice([1.0, 1.0, 0.5, 0.2])
        seed = rng.randrange(1 << 30)
        if kind == "fail_action":
            world.sandbox.inject(
                "fail_action",
                service=rng.choice(["digitalocean", "hetzner", None]),
                count=count,
                probability=probability,
                seed=seed,
            )
            continue
        options: dict = {"count": count, "probability": probability, "seed": seed}
        if kind == "error":
            options["status"] = rng.choice([500, 502, 503, 504])
        elif kind == "rate_limit":
            options["retry_after"] = rng.choice([1, 5, 30])
        elif kind == "delay":
            options["seconds"] = rng.choice([0.05, REQUEST_TIMEOUT + 0.1])
            options["count"] = count or 3  # every request slow is an outage; the fault suite has it
            longest = max(longest, options["seconds"])
        if endpoint == "any":
            world.sandbox.inject(kind, **options)
        else:
            world.inject(kind, endpoint, **options)
    return longest


def operator(world: World, rng: random.Random, now: datetime) -> None:
    """Now and then a person adds a manual snapshot or protects one of ours."""
    state = world.sandbox.state
    roll = rng.random()
    if roll < 0.04:
        account, servers = rng.choice(sorted(SERVERS.items()))
        server_id = rng.choice(sorted(i for i in servers if i != 299))
        name = servers[server_id]
        # A name exactly like ours, without our marker: still not ours (docs/promises.md §5).
        label = rng.choice([f"{name}-{now:%Y%m%d%H%M%S}", f"{name} before upgrade", f"pre-{name}"])
        with state.lock:
            made = state.add_snapshot(
                account, label, server_id=server_id, created=now - timedelta(minutes=30)
            )
        world.unmanaged.add(made.id)
    elif roll < 0.06:
        with state.lock:
            ours = [
                s
                for s in state.snapshots.values()
                if s.account == "hz"
                and s.labels.get("managed-by") == "snapshot-policy"
                and s.status == "available"
            ]
            if ours:
                rng.choice(ours).protected = True


def chaos(folder: Path, seed: int, runs: int, fault_share: float = 0.7) -> dict:
    """Run the chaos for `runs` runs; return a few counts for the test to look at."""
    rng = random.Random(seed)
    now = START
    # Runs are 4 simulated hours apart, longer than the journal's in-flight window (creation
    # timeout + 600 s, as in production): a start left unmarked must still be adopted.
    world = World(folder, seed_state(rng), POLICY, now, action_seconds=0.4)
    creations = Creations()
    stats = defaultdict(int)
    try:
        for number in range(runs):
            world.now = now
            operator(world, rng, now)
            protected = world.protected()
            faulty = rng.random() < fault_share
            settle = random_faults(world, rng) if faulty else 0.0
            where = (
                f"seed {seed}, run {number} at {now:%Y-%m-%d %H:%M}Z"
                f"{' with faults ' + str(world.sandbox.faults.list()) if faulty else ''}"
            )
            try:
                result = world.run(settle=settle + 0.05 if settle else 0.0)
                world.sandbox.clear_faults()
                check_run(world, result, protected)
                targets = {
                    (p.target.account, p.target.server_id): p.target for p in result.plan.targets
                }
                for snapshot in sorted(
                    result.appeared.values(), key=lambda s: s["created"]
                ):  # all made by this run
                    target = targets.get(
                        ("do" if "tags" in snapshot else "hz", str(snapshot["server_id"]))
                    )
                    assert target is not None, (
                        f"a snapshot appeared for no planned target: {snapshot}"
                    )
                    creations.add(
                        target,
                        datetime.fromisoformat(snapshot["created"].replace("Z", "+00:00")),
                        snapshot["name"],
                    )
                if not faulty:
                    refused = any(p.refusal for p in result.plan.targets)
                    assert result.report.exit_code == 0 or refused, report_summary(result.report)
                    check_retained(world)
            except AssertionError as error:
                raise AssertionError(f"{where}: {error}") from None
            stats["runs"] += 1
            stats["faulty"] += faulty
            stats["failed runs"] += result.report.exit_code != 0
            stats["created"] += sum(o.created is not None for o in result.report.outcomes)
            stats["deleted"] += sum(len(o.deleted) for o in result.report.outcomes)
            stats["refused"] += sum(bool(p.refusal) for p in result.plan.targets)
            now += STEP
    finally:
        world.close()
    return dict(stats)
