"""A small ready-made cloud for `snapshot-policy sandbox` without `--state`, and for demos.

One DigitalOcean and one Hetzner account, three servers (web-1 with a volume attached), a
few older snapshots (one made by hand, one protected) and a Telegram bot. Timestamps are
relative to `now`, so the example always looks recent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .state import format_time, utc_now


def example_state(now: datetime | None = None) -> dict:
    """The example in the JSON state format (see the package docstring)."""
    now = now or utc_now()

    def ago(days: float) -> str:
        return format_time(now - timedelta(days=days))

    return {
        "accounts": [
            {"name": "do-demo", "provider": "digitalocean", "tokens": ["sandbox-do-token"]},
            {"name": "hz-demo", "provider": "hetzner", "tokens": ["sandbox-hcloud-token"]},
        ],
        "servers": [
            {
                "account": "do-demo",
                "id": 3164444,
                "name": "web-1",
                "tags": ["web"],
                "created": ago(400),
            },
            {
                "account": "do-demo",
                "id": 3164445,
                "name": "web-2",
                "tags": ["web"],
                "created": ago(400),
            },
            {
                "account": "hz-demo",
                "id": 42,
                "name": "db-1",
                "labels": {"role": "db"},
                "created": ago(300),
            },
        ],
        "snapshots": [
            {
                "account": "do-demo",
                "id": 6372321,
                "server_id": 3164444,
                "name": "web-1-before-upgrade",
                "created": ago(30),
            },
            {
                "account": "hz-demo",
                "id": 4711,
                "server_id": 42,
                "name": "db-1 golden image",
                "created": ago(90),
                "protected": True,
            },
            {
                "account": "hz-demo",
                "id": 4712,
                "server_id": 42,
                "name": "db-1 by hand",
                "created": ago(3),
            },
        ],
        "volumes": [  # for a target with `volumes: true` (DigitalOcean)
            {
                "account": "do-demo",
                "id": "7724db7c-e098-11e5-b522-000f53304e51",
                "name": "web-1-data",
                "droplet_ids": [3164444],
                "created": ago(400),
            }
        ],
        "telegram": {"bots": [{"token": "123456:SANDBOX-TOKEN", "username": "sandbox_bot"}]},
    }
