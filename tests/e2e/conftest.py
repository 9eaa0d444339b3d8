"""A sandbox cloud and a legacy snapshots.py layout on disk, as an operator would have them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from snapshot_policy.cli import system_clock
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import BOT_TOKEN, DO_TOKEN, HZ_TOKEN, cloud
from tests.factories import FakeClock

# Far from the wall clock, so a part of the tool that read the wall clock instead of the one
# it was handed would disagree with the sandbox and fail the test.
SKEW = timedelta(days=1234, hours=7)


@pytest.fixture
def clock() -> FakeClock:
    """The run's clock, shared by the sandbox and every `main(argv, clock=clock)`: it stands
    years from the wall clock and moves only when the test moves it."""
    return FakeClock(datetime.now(timezone.utc).replace(microsecond=0) + SKEW)


@pytest.fixture
def sandbox(monkeypatch, clock):
    with Sandbox(cloud(clock.now), action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


@pytest.fixture
def wall_clock_sandbox(tokens, monkeypatch):
    """For a tool run in a process of its own, which reads the wall clock (as cron runs it):
    the sandbox reads it too."""
    with Sandbox(cloud(system_clock().replace(microsecond=0)), action_seconds=0.05) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


@pytest.fixture
def tokens(monkeypatch):
    """The variables the test policies name their tokens by (`env:TEST_DO_TOKEN`, …)."""
    for name, value in (
        ("TEST_DO_TOKEN", DO_TOKEN),
        ("TEST_HZ_TOKEN", HZ_TOKEN),
        ("TEST_BOT_TOKEN", BOT_TOKEN),
    ):
        monkeypatch.setenv(name, value)


@pytest.fixture
def legacy_layout(tmp_path):
    """The layout of the legacy manual: snapshots.config beside configs/*.json (plus junk to
    skip)."""
    (tmp_path / "snapshots.config").write_text(
        "[DIRECTORIES]\nconfigs_dir = configs\nlogs_dir = logs\n\n"
        "[TIMING]\ndelay_between_servers = 20\n\n"
        "[LOGGING]\nlevel = INFO\n\n"
        f"[TELEGRAM]\nenabled = true\nbot_token = {BOT_TOKEN}\nchat_id = -1001234567890\n"
        "message_success = *OK* `{server_name}`\\nsnapshot `{snapshot_name}`\\n{snapshot_info}\n\n"
        "[WEBHOOK]\nenabled = false\nurl = https://your-webhook-url.com/notify\n"
    )
    configs = tmp_path / "configs"
    configs.mkdir()
    droplet = {
        "provider": "digitalocean",
        "id": "3164444",
        "name": "web-1",
        "api_token": DO_TOKEN,
        "retain_last_snapshots": 3,
        "telegram": {
            "enabled": True,
            "bot_token": "your_telegram_bot_token_here",
            "chat_id": "your_telegram_chat_id_here",
        },
    }
    server = {
        "provider": "hetzner",
        "id": 4711,
        "name": "db-1",
        "api_token": HZ_TOKEN,
        "retain_last_snapshots": 2,
        "webhook": {
            "enabled": True,
            "url": "https://hooks.example.com/snap",
            "payload_success": {"server": "{server_name}", "total": "{total_snapshots}"},
        },
    }
    (configs / "digitalocean_droplet1.json").write_text(
        json.dumps({"digitalocean_droplet": droplet}, indent=2)
    )
    (configs / "hetzner_cloud_server1.json").write_text(
        json.dumps({"hetzner_cloud_server": server}, indent=2)
    )
    (configs / "._digitalocean_droplet1.json").write_bytes(
        b"\x00\x05\x16\x07 Mac OS X resource fork"
    )
    (configs / "digitalocean_droplet2.json.sample").write_text("{}")
    return tmp_path
