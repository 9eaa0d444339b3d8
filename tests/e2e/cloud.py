"""The cloud the end-to-end tests run against: tokens, servers and snapshots in the sandbox.

Every date is relative to the run's clock, so the tool, the sandbox and the assertions agree
on any calendar day (CI also runs the suite with the clock moved 400 days ahead).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

DO_TOKEN = "dop_v1_4f9c2e7a1b3d5f60718293a4b5c6d7e8f9012345678901234567890abcdef12"
HZ_TOKEN = "Xq7LmN2pR4sT6vW8yZ0aB1cD3eF5gH7iJ9kL1mN3oP5qR7sT9uV1wX3yZ5aB7cD9"
BOT_TOKEN = "7311234567:AAHk3mX9pQ2rS5tU8vW1yZ4bC7dE0fG3hJ6"


def made(now: datetime, days_ago: float) -> datetime:
    """When the seeded snapshot of `days_ago` days before `now` was made: 5 s earlier still,
    so a daily schedule finds the newest one a little over a day old, as a nightly cron does."""
    return now - timedelta(days=days_ago, seconds=5)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def legacy_name(server: str, now: datetime, days_ago: float) -> str:
    """The name snapshots.py gave the snapshot of `server` made `days_ago` days before `now`."""
    return f"{server}-{stamp(made(now, days_ago))}"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def daily(
    account: str,
    server_id: int,
    server: str,
    now: datetime,
    days: range = range(1, 6),
    **extra: object,
) -> list[dict]:
    """One snapshot a day, named as snapshots.py named them, on each of `days` days before `now`."""
    return [
        {
            "account": account,
            "server_id": server_id,
            "name": legacy_name(server, now, d),
            "created": iso(made(now, d)),
            **extra,
        }
        for d in days
    ]


def cloud(now: datetime) -> dict:
    """web-1 (DigitalOcean) and db-1 (Hetzner), each with five days of snapshots snapshots.py
    made, one manual snapshot, and a look-alike server whose name starts with the same letters."""
    return {
        "accounts": [
            {"name": "do", "provider": "digitalocean", "tokens": [DO_TOKEN]},
            {"name": "hz", "provider": "hetzner", "tokens": [HZ_TOKEN]},
        ],
        "servers": [
            {"account": "do", "id": 3164444, "name": "web-1"},
            {"account": "do", "id": 3164445, "name": "web-10"},
            {"account": "hz", "id": 4711, "name": "db-1"},
        ],
        "snapshots": [
            *daily("do", 3164444, "web-1", now),
            {
                "account": "do",
                "server_id": 3164444,
                "name": "web-1-before-upgrade",
                "created": iso(made(now, 56)),
            },
            *daily("do", 3164445, "web-10", now, range(1, 2)),
            *daily("hz", 4711, "db-1", now),
            {
                "account": "hz",
                "server_id": 4711,
                "name": "db-1-manual",
                "created": iso(made(now, 86)),
                "protected": True,
            },
        ],
        "telegram": {"bots": [{"token": BOT_TOKEN, "username": "ops_bot"}]},
    }


def unwrapped(text: str) -> str:
    """`text` with each line continued on an indented line (apply's result lines longer than
    80 columns, after their time under cron) joined back into one, for assertions on a whole
    line."""
    return re.sub(r"\n(?:\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] )? {4,}", " ", text)
