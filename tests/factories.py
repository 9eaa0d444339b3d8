"""Small builders for test data, so tests state only what matters to them."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from snapshot_policy.model import RetentionPolicy, Safety, Schedule, Snapshot, Target

_ids = itertools.count(1000)


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


def snap(created: datetime, *, id: str | None = None, server_id: str = "1", managed: bool = True, **flags: bool) -> Snapshot:
    """A snapshot of server 1, managed unless told otherwise."""
    ident = id or str(next(_ids))
    ownership = "managed-by label" if managed else "no managed-by label"
    return Snapshot(ident, f"web-{created:%Y%m%d%H%M%S}", created, server_id, managed, ownership, **flags)


def target(*, schedule: Schedule = Schedule(), max_deletions: int = 10, timezone: str = "UTC", **rules: object) -> Target:
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
