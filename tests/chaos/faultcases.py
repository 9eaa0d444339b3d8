"""The fault matrix: each fault kind on each endpoint kind, one apply, then convergence.

A case injects one fault (for two requests, or for every matching request) into a run of
apply over a DigitalOcean and a Hetzner server with managed, manual, look-alike and
protected snapshots, checks docs/promises.md §5 after that run, reruns fault-free until the plan is
empty, and compares the end state with that of a fault-free run of an identical world:
same snapshots, each with our marker or not — nothing retained lost, nothing doubled,
nothing unmanaged or protected deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from snapshot_policy.output.render import report_summary
from tests.chaos.harness import BOT_TOKEN, DO_TOKEN, HZ_TOKEN, REQUEST_TIMEOUT, World, check_run

NOW = datetime(2026, 11, 26, 3, 0, 0, tzinfo=timezone.utc)
OURS_DO = ["snapshot-policy"]


def ours_hz(server_id: int) -> dict:
    return {"managed-by": "snapshot-policy", "snapshot-policy/server-id": str(server_id)}


def state() -> dict:
    """web-1 (DigitalOcean 101) and db-1 (Hetzner 201) with four managed snapshots each, and
    what must survive: manual snapshots, a name that fits the pattern without our marker,
    a Hetzner snapshot marked for another server, a protected one, a look-alike server."""
    days = range(22, 26)
    return {
        "accounts": [
            {"name": "do", "provider": "digitalocean", "tokens": [DO_TOKEN], "rate_limit": 10**9},
            {"name": "hz", "provider": "hetzner", "tokens": [HZ_TOKEN], "rate_limit": 10**9},
        ],
        "servers": [
            {"account": "do", "id": 101, "name": "web-1"},
            {"account": "do", "id": 102, "name": "web-10"},
            {"account": "hz", "id": 201, "name": "db-1"},
        ],
        "snapshots": [
            *[
                {
                    "account": "do",
                    "server_id": 101,
                    "name": f"web-1-202611{d}030000",
                    "created": f"2026-11-{d}T03:00:00Z",
                    "tags": OURS_DO,
                }
                for d in days
            ],
            {
                "account": "do",
                "server_id": 101,
                "name": "web-1-before-upgrade",
                "created": "2026-10-01T10:00:00Z",
            },
            {
                "account": "do",
                "server_id": 101,
                "name": "web-1-20261001000000",
                "created": "2026-10-01T00:00:00Z",
            },
            {
                "account": "do",
                "server_id": 102,
                "name": "web-10-20261120030000",
                "created": "2026-11-20T03:00:00Z",
                "tags": OURS_DO,
            },
            *[
                {
                    "account": "hz",
                    "server_id": 201,
                    "name": f"db-1-202611{d}030000",
                    "created": f"2026-11-{d}T03:00:00Z",
                    "labels": ours_hz(201),
                }
                for d in days
            ],
            {
                "account": "hz",
                "server_id": 201,
                "name": "db-1-20261101030000",
                "created": "2026-11-01T03:00:00Z",
                "labels": ours_hz(201),
                "protected": True,
            },
            {
                "account": "hz",
                "server_id": 201,
                "name": "db-1-manual",
                "created": "2026-09-01T10:00:00Z",
            },
            {
                "account": "hz",
                "server_id": 201,
                "name": "db-1-20261002030000",
                "created": "2026-10-02T03:00:00Z",
                "labels": ours_hz(999),
            },
        ],
        "telegram": {"bots": [{"token": BOT_TOKEN, "username": "chaos_bot"}]},
    }


POLICY = """\
version: 1
accounts:
  do: {provider: digitalocean, token: env:CHAOS_DO_TOKEN, endpoint: "@DO@"}
  hz: {provider: hetzner, token: env:CHAOS_HZ_TOKEN, endpoint: "@HZ@"}
notifications:
  tg:
    {type: telegram, bot_token: env:CHAOS_BOT_TOKEN, chat_id: "-100123",
     timeout: 0.25, retries: 2, base_delay_between_retries: 0.01}
  hook:
    {type: webhook, url: "@HOOK@", secret: env:CHAOS_HOOK_SECRET,
     timeout: 0.25, retries: 2, base_delay_between_retries: 0.01}
defaults:
  schedule: {every: 24h}
  retention: {keep_last: 3}
  notify: [tg, hook]
targets:
  - {name: web, account: do, ids: [101]}
  - {name: db, account: hz, ids: [201]}
settings:
  lock_file: "@FOLDER@/lock"
"""

SLOW = REQUEST_TIMEOUT + 0.15
KINDS = {
    "429": {"kind": "rate_limit", "retry_after": 2},
    "500": {"kind": "error", "status": 500},
    "503": {"kind": "error", "status": 503},
    "drop": {"kind": "drop"},
    "slow": {"kind": "delay", "seconds": SLOW},
    "lose_reply": {"kind": "lose_reply"},
}
CLOUD_ENDPOINTS = ("list", "create", "poll", "delete")
NOTIFY_ENDPOINTS = ("telegram", "webhook")


@dataclass(frozen=True)
class Case:
    endpoint: str
    kind: str
    provider: str | None  # digitalocean / hetzner for cloud endpoints
    persistent: bool

    @property
    def id(self) -> str:
        where = f"{self.provider}-{self.endpoint}" if self.provider else self.endpoint
        return f"{where}-{self.kind}-{'always' if self.persistent else 'twice'}"


def all_cases() -> list[Case]:
    cases = []
    for provider in ("digitalocean", "hetzner"):
        for endpoint in CLOUD_ENDPOINTS:
            for kind in KINDS:
                if kind == "lose_reply" and endpoint not in ("create", "delete"):
                    continue  # a lost reply to a read is a drop
                for persistent in (False, True):
                    cases.append(Case(endpoint, kind, provider, persistent))
        for persistent in (False, True):
            cases.append(Case("create", "fail_action", provider, persistent))
    for kind in ("429", "500", "503", "drop", "slow"):
        for persistent in (False, True):
            cases.append(Case("tag", kind, "digitalocean", persistent))
            for endpoint in NOTIFY_ENDPOINTS:
                cases.append(Case(endpoint, kind, None, persistent))
    return cases


def make_world(folder: Path, slow_actions: bool = False) -> World:
    # Real snapshot actions take minutes, so a create the cloud received late still finds
    # the first one running (DigitalOcean 422, Hetzner 423 locked); actions longer than a
    # slow request keep that true here.
    return World(folder, state(), POLICY, NOW, action_seconds=0.6 if slow_actions else 0.03)


def reference(folder: Path) -> list[tuple]:
    world = make_world(folder)
    try:
        result = world.run()
        assert result.report.exit_code == 0, report_summary(result.report)
        assert not world.plan().has_changes
        return world.end_state()
    finally:
        world.close()


def run_case(case: Case, folder: Path, expected: list[tuple]) -> None:
    """Run `case` in a fresh world under `folder`; assert docs/promises.md §5 and convergence to
    `expected`."""
    world = make_world(folder, slow_actions=case.kind == "slow")
    try:
        protected = world.protected()
        count = None if case.persistent else 2
        if case.kind == "fail_action":
            world.sandbox.inject("fail_action", service=case.provider, count=count)
        else:
            options = dict(KINDS[case.kind])
            world.inject(
                options.pop("kind"), case.endpoint, service=case.provider, count=count, **options
            )
        result = world.run(settle=SLOW + 0.1 if case.kind == "slow" else 0.0)
        check_run(world, result, protected)
        check_outcome(case, result)
        for rerun in world.converge():
            check_run(world, rerun, protected)
            assert rerun.report.exit_code == 0, report_summary(rerun.report)
        assert world.end_state() == expected
    finally:
        world.close()


def check_outcome(case: Case, result) -> None:
    """What the faulty run itself must report: a fault that clears is absorbed by retries;
    one that persists fails the targets it hits, and only those (a notification never)."""
    outcomes = {o.plan.target.name: o for o in result.report.outcomes}
    failed = {name for name, o in outcomes.items() if not o.ok} | {
        f.target for f in result.report.failures
    }
    hit = {"digitalocean": {"web"}, "hetzner": {"db"}, None: set()}[case.provider]
    if case.endpoint in NOTIFY_ENDPOINTS:
        assert not failed, report_summary(result.report)
        kind = "telegram" if case.endpoint == "telegram" else "webhook"
        mine = [d for d in result.deliveries if d.kind == kind]
        assert mine and all(d.ok is not case.persistent for d in mine), mine
        assert all(d.ok for d in result.deliveries if d.kind != kind)
    elif case.endpoint == "create" and case.kind in ("lose_reply", "slow"):
        # The start took effect; the re-check before any retry finds it, or the run fails.
        assert failed <= hit, (failed, report_summary(result.report))
    elif case.persistent or case.kind == "fail_action":
        assert failed == hit, (failed, report_summary(result.report))
    else:
        assert not failed, report_summary(result.report)
        assert all(d.ok for d in result.deliveries), result.deliveries
