"""Small builders for test data, so tests state only what matters to them."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from snapshot_policy.core.model import RetentionPolicy, Safety, Schedule, Snapshot, Target

_ids = itertools.count(1000)

# Neither an interval nor a cron expression: a snapshot is due on every run.
EVERY_RUN = Schedule()


class FakeClock:
    """A clock the test moves by hand; hand it to `main(argv, clock=...)` and to the sandbox."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=timezone.utc)


def snap(
    created: datetime,
    *,
    id: str | None = None,
    server_id: str = "1",
    managed: bool = True,
    **flags: bool,
) -> Snapshot:
    """A snapshot of server 1, managed unless told otherwise."""
    ident = id or str(next(_ids))
    ownership = "managed-by label" if managed else "no managed-by label"
    return Snapshot(
        ident, f"web-{created:%Y%m%d%H%M%S}", created, server_id, managed, ownership, **flags
    )


def target(
    *,
    schedule: Schedule = EVERY_RUN,
    max_deletions: int = 10,
    timezone: str = "UTC",
    **rules: object,
) -> Target:
    """A target for server 1 (`web`) on Hetzner with the given retention rules."""
    return Target(
        name="web",
        provider="hetzner",
        account="main",
        server_id="1",
        server_name="web",
        retention=RetentionPolicy(**rules),
        schedule=schedule,
        safety=Safety(max_deletions=max_deletions),
        timezone=timezone,
    )


# -- fleets in the sandbox, for the scale tests and the benchmarks ---------------------------


def cloud_accounts(do_token: str, hz_token: str, rate_limit: int) -> list[dict]:
    """The sandbox's DigitalOcean account `do` (our marker tag already made, as after a first
    run) and Hetzner account `hz`, with a rate limit a fleet's run does not reach."""
    return [
        {
            "name": "do",
            "provider": "digitalocean",
            "tokens": [do_token],
            "rate_limit": rate_limit,
            "tags": ["snapshot-policy"],
        },
        {"name": "hz", "provider": "hetzner", "tokens": [hz_token], "rate_limit": rate_limit},
    ]


def mark_ours(snapshot: dict) -> None:
    """Mark a sandbox snapshot of account `do` or `hz` as the tool marks what it made: a
    DigitalOcean tag, Hetzner labels naming its server."""
    if snapshot["account"] == "do":
        snapshot["tags"] = ["snapshot-policy"]
    else:
        server = str(snapshot["server_id"])
        snapshot["labels"] = {"managed-by": "snapshot-policy", "snapshot-policy/server-id": server}


def fleet(
    size: int,
    *,
    seed: int,
    now: datetime,
    snapshots: Callable[[random.Random], int],
    tokens: tuple[str, str],
) -> dict:
    """The sandbox state of `size` servers, alternately on `do` (web-N, id 100000+N) and `hz`
    (app-N, id 200000+N); each has `snapshots(rng)` snapshots, one a day back from `now`, 60 %
    of them ours (marked, named as the tool names them) and the rest manual. The seed fixes all."""
    rng = random.Random(seed)
    accounts = cloud_accounts(*tokens, rate_limit=1_000_000_000)
    state: dict = {"accounts": accounts, "servers": [], "snapshots": []}
    for n in range(size):
        if n % 2 == 0:
            account, server_id, name = "do", 100_000 + n, f"web-{n}"
        else:
            account, server_id, name = "hz", 200_000 + n, f"app-{n}"
        state["servers"].append({"account": account, "id": server_id, "name": name})
        for k in range(snapshots(rng)):
            created = now - timedelta(days=k + 1, minutes=rng.randint(0, 600))
            snapshot = {"account": account, "server_id": server_id, "created": created.isoformat()}
            if rng.random() < 0.6:
                snapshot["name"] = f"{name}-{created:%Y%m%d%H%M%S}"
                mark_ours(snapshot)
            else:
                manual = (
                    f"{name}-before-upgrade-{k}",
                    f"manual {k} of {name}",
                    f"{name}-{created:%Y%m%d}",
                )
                snapshot["name"] = rng.choice(manual)
            state["snapshots"].append(snapshot)
    return state
