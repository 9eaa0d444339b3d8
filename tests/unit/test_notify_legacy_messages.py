"""The snapshots.py style's texts for what its code did beyond its built-in templates: an
empty setting's FINAL_STATUS text and own body, and a made snapshot whose deletions failed
told as a success (issue 21, review leftovers)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from snapshot_policy.core.model import TelegramChannel, WebhookChannel
from snapshot_policy.edges.notify.messages import (
    FAILURE,
    LEGACY_STYLE,
    SUCCESS,
    Event,
    Style,
    as_told,
    plain_text,
    telegram_text,
    variables,
    webhook_body,
    webhook_payload,
)

LEGACY = Style(LEGACY_STYLE)
MADE = Event(
    target="db",
    provider="hetzner",
    server_name="db_main-1",
    server_id="4711",
    snapshot_name="db_main-1-20310115112101",
    total_snapshots=3,
    status=SUCCESS,
    error=None,
    hostname="backup-host",
    timestamp=datetime(2031, 1, 15, 10, 21, 1, tzinfo=timezone.utc),
)


@pytest.fixture(autouse=True)
def host_in_berlin(host_zone):
    host_zone("Europe/Berlin")


def test_an_empty_message_is_the_old_final_status_text():
    text, mode = telegram_text(MADE, "", LEGACY)
    assert mode == "Markdown"
    assert text == (
        "*FINAL_STATUS*\n*Script:* `snapshots.py`\n*Provider:* `HETZNER`\n"
        "*Server:* `db_main-1`\n*Status:* `SUCCESS`\n*Hostname:* `backup-host`\n"
        "*Timestamp:* `2031-01-15 11:21:01`\n*Snapshot:* `db_main-1-20310115112101`\n"
        "*Total Snapshots:* `3 snapshots exist`"
    )
    failed = replace(MADE, status=FAILURE, error="boom")
    assert "*Status:* `FAILURE`" in telegram_text(failed, "", LEGACY)[0]
    assert "*Snapshot:* `none`" in plain_text(failed, "", LEGACY)


def test_an_empty_payload_is_the_old_body_with_a_number_of_snapshots():
    body = webhook_body(webhook_payload(MADE, {}, LEGACY), LEGACY).decode()
    assert body == (
        '{"script": "snapshots.py", "provider": "hetzner", "server": "db_main-1", '
        '"server_id": "4711", "status": "SUCCESS", "hostname": "backup-host", '
        '"timestamp": "2031-01-15 11:21:01", "snapshot_name": "db_main-1-20310115112101", '
        '"total_snapshots": 3, "snapshot_info": "3 snapshots exist"}'
    )
    # In this program's own style an empty template stays what it says.
    assert webhook_payload(MADE, {}) == {}
    assert json.loads(webhook_body(webhook_payload(MADE, {}, LEGACY)))["total_snapshots"] == 3


def test_a_made_snapshot_whose_deletion_failed_is_a_success_to_the_old_styles_channels():
    legacy = TelegramChannel("t", "1:a", "5", style=LEGACY_STYLE)
    ours = WebhookChannel("w", "https://hooks.example.com/x")
    failed = replace(MADE, status=FAILURE, error="delete failed", made=True)
    told = as_told(failed, (legacy, ours))
    assert told == [
        (replace(failed, status=SUCCESS, error=None), (legacy,)),
        (failed, (ours,)),
    ]
    # Its own variables say so too, for a log's FINAL_STATUS line.
    assert (variables(failed, LEGACY)["status"], variables(failed)["status"]) == (
        SUCCESS,
        FAILURE,
    )
    assert variables(failed, LEGACY)["snapshot_name"] == "db_main-1-20310115112101"
    # Nothing made, or nothing in the old style: told as it is.
    unmade = replace(failed, made=False)
    assert as_told(unmade, (legacy, ours)) == [(unmade, (legacy, ours))]
    assert variables(unmade, LEGACY)["snapshot_name"] == "none"
    assert as_told(failed, (ours,)) == [(failed, (ours,))]
