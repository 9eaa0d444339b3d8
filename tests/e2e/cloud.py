"""The cloud the end-to-end tests run against: tokens, servers and snapshots in the sandbox."""

from __future__ import annotations

from datetime import datetime, timezone

DO_TOKEN = "dop_v1_4f9c2e7a1b3d5f60718293a4b5c6d7e8f9012345678901234567890abcdef12"
HZ_TOKEN = "Xq7LmN2pR4sT6vW8yZ0aB1cD3eF5gH7iJ9kL1mN3oP5qR7sT9uV1wX3yZ5aB7cD9"
BOT_TOKEN = "7311234567:AAHk3mX9pQ2rS5tU8vW1yZ4bC7dE0fG3hJ6"
NOW = datetime(2026, 11, 26, 3, 0, 5, tzinfo=timezone.utc)


def cloud() -> dict:
    """web-1 (DigitalOcean) and db-1 (Hetzner), each with snapshots snapshots.py made, one
    manual snapshot, and a look-alike server whose name starts with the same letters."""
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
            *[{"account": "do", "server_id": 3164444, "name": f"web-1-2026112{d}030000", "created": f"2026-11-2{d}T03:00:00Z"} for d in range(1, 6)],
            {"account": "do", "server_id": 3164444, "name": "web-1-before-upgrade", "created": "2026-10-01T10:00:00Z"},
            {"account": "do", "server_id": 3164445, "name": "web-10-20261125030000", "created": "2026-11-25T03:00:00Z"},
            *[{"account": "hz", "server_id": 4711, "name": f"db-1-2026112{d}030000", "created": f"2026-11-2{d}T03:00:00Z"} for d in range(1, 6)],
            {"account": "hz", "server_id": 4711, "name": "db-1-manual", "created": "2026-09-01T10:00:00Z", "protected": True},
        ],
        "telegram": {"bots": [{"token": BOT_TOKEN, "username": "ops_bot"}]},
    }
