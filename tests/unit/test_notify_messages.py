"""What notifications say: Telegram texts (default, templated, summary) and webhook payloads."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from snapshot_policy.edges.notify.messages import (
    FAILURE,
    LEGACY_PAYLOAD,
    LEGACY_STYLE,
    SUCCESS,
    Drilled,
    Event,
    Style,
    plain_text,
    summary_plain_text,
    summary_text,
    telegram_text,
    variables,
    webhook_body,
    webhook_payload,
)

AT = datetime(2025, 1, 1, 4, 30, tzinfo=timezone(timedelta(hours=1)))  # 03:30 UTC


@pytest.fixture(autouse=True)
def host_in_new_york(host_zone):
    """Templates' {timestamp} is the host's local time, as snapshots.py wrote it: a host
    whose zone is not UTC shows that it is."""
    host_zone("America/New_York")


OK = Event(
    target="web",
    provider="digitalocean",
    server_name="web-1",
    server_id="101",
    snapshot_name="web-1-20250101033000",
    total_snapshots=3,
    status=SUCCESS,
    error=None,
    hostname="backup-host",
    timestamp=AT,
)
FAILED = replace(
    OK,
    target="db",
    provider="hetzner",
    server_name="db-1",
    server_id="303",
    snapshot_name="",
    total_snapshots=1,
    status=FAILURE,
    error="quota exceeded",
)


def test_variables_cover_every_template_variable_with_legacy_formats():
    assert variables(OK) == {
        "script": "snapshot-policy",
        "provider": "digitalocean",
        "server_name": "web-1",
        "server_id": "101",
        "snapshot_name": "web-1-20250101033000",
        "total_snapshots": 3,
        "snapshot_info": "3 snapshots exist",
        "status": "SUCCESS",
        "hostname": "backup-host",
        "timestamp": "2024-12-31 22:30:00",
        "droplet_name": "web-1",
        "droplet_id": "101",
    }
    assert variables(FAILED)["snapshot_info"] == "1 snapshot exists"


def test_telegram_text_default_success_layout():
    assert telegram_text(OK, None) == (
        "✅ *Snapshot succeeded*\n"
        "Server: web-1 (id 101, digitalocean)\n"
        "Snapshot: web-1-20250101033000\n"
        "3 snapshots exist\n"
        "Host: backup-host\n"
        "Time: 2025-01-01 03:30:00 UTC",
        "Markdown",
    )


def test_telegram_text_default_failure_layout_names_the_error_and_skips_a_missing_snapshot():
    assert telegram_text(FAILED, None) == (
        "❌ *Snapshot failed*\n"
        "Server: db-1 (id 303, hetzner)\n"
        "Error: quota exceeded\n"
        "1 snapshot exists\n"
        "Host: backup-host\n"
        "Time: 2025-01-01 03:30:00 UTC",
        "Markdown",
    )


def test_telegram_text_default_layout_leaves_out_unknown_server_details():
    unlisted = replace(FAILED, provider="", server_id="", error="account token rejected")
    assert telegram_text(unlisted, None)[0].splitlines()[1:3] == [
        "Server: db-1",
        "Error: account token rejected",
    ]
    assert summary_text([unlisted])[0].splitlines()[1] == "❌ db-1: account token rejected"


def test_plain_text_default_layout_has_no_markup():
    event = replace(OK, server_name="db_main-1")
    assert plain_text(event, None).splitlines()[:2] == [
        "✅ Snapshot succeeded",
        "Server: db_main-1 (id 101, digitalocean)",
    ]


def test_telegram_text_template_fills_every_variable_including_deprecated_ones():
    template = " ".join(f"{{{name}}}" for name in variables(OK))
    text, parse_mode = telegram_text(OK, template)
    assert text == (
        "snapshot-policy digitalocean web-1 101 web-1-20250101033000 3 3 snapshots exist SUCCESS "
        "backup-host 2024-12-31 22:30:00 web-1 101"
    )
    assert parse_mode == "Markdown"


def test_telegram_text_escapes_values_outside_entities_only():
    event = replace(OK, server_name="db_main-1", snapshot_name="db_main-1-x")
    text, _ = telegram_text(event, "*Done* on {server_name}, snapshot `{snapshot_name}`")
    assert text == "*Done* on db\\_main-1, snapshot `db_main-1-x`"
    assert plain_text(event, "*Done* on {server_name}") == "*Done* on db_main-1"


def test_telegram_text_closes_and_reopens_an_entity_around_its_own_closing_character():
    event = replace(OK, server_name="a*b_c`d[e")
    text, _ = telegram_text(event, "{server_name} *{server_name}* _{server_name}_ `{server_name}`")
    assert text == ("a\\*b\\_c\\`d\\[e *a*\\**b_c`d[e* _a*b_\\__c`d[e_ `a*b_c`\\``d[e`")
    link, _ = telegram_text(
        replace(OK, server_name="db_main-1"), "[logs](https://logs.example/{server_name})"
    )
    assert link == "[logs](https://logs.example/db_main-1)"


def test_telegram_text_leaves_unknown_or_unformattable_fields_as_written():
    text, _ = telegram_text(
        OK, "{nope} {server_name.__class__} {{literal}} {total_snapshots:>3} {server_name:d}"
    )
    assert text == (
        "{nope} {server\\_name.\\_\\_class\\_\\_} {literal} {total\\_snapshots:>3} "
        "{server\\_name:d}"
    )
    assert plain_text(OK, "stray { brace {server_name}") == "stray { brace {server_name}"


def test_a_format_spec_or_conversion_is_never_applied_even_if_validation_missed_it():
    """Issue 12: `{total_snapshots:>300000000}` made a 300 MB message. Only plain {name} is
    filled."""
    template = (
        "{total_snapshots:>300000000} {server_name!r} {server_id[0]} {status!s:>9} {server_name}"
    )
    expected = "{total_snapshots:>300000000} {server_name!r} {server_id[0]} {status!s:>9} web-1"
    assert plain_text(OK, template) == expected
    assert len(telegram_text(OK, template)[0]) < 200
    assert webhook_payload(
        OK, {"count": "{total_snapshots:>300000000}", "n": "{total_snapshots}"}
    ) == {"count": "{total_snapshots:>300000000}", "n": "3"}


def test_summary_text_counts_then_lists_failures_first():
    other = replace(
        OK, server_name="web_2", snapshot_name="web_2-x", timestamp=AT + timedelta(minutes=5)
    )
    text, parse_mode = summary_text([OK, FAILED, other])
    assert parse_mode == "Markdown"
    assert text == (
        "❌ *Snapshot run: 2 succeeded, 1 failed*\n"
        "❌ db-1 (hetzner): quota exceeded\n"
        "✅ web-1 (digitalocean): web-1-20250101033000, 3 snapshots exist\n"
        "✅ web\\_2 (digitalocean): web\\_2-x, 3 snapshots exist\n"
        "Host: backup-host\n"
        "Time: 2025-01-01 03:35:00 UTC"
    )
    assert summary_plain_text([OK]).splitlines()[0] == "✅ Snapshot run: 1 succeeded, 0 failed"


def test_summary_text_stays_within_telegram_limit():
    events = [replace(OK, server_name=f"server-{n:03d}-" + "x" * 40) for n in range(200)]
    text, _ = summary_text(events)
    assert len(text) <= 4096
    assert text.splitlines()[-3].startswith("… and ") and text.endswith("UTC")


def test_webhook_payload_default_has_the_legacy_fields_plus_target_and_error():
    assert webhook_payload(FAILED, None) == {
        "script": "snapshot-policy",
        "provider": "hetzner",
        "server": "db-1",
        "server_id": "303",
        "status": "FAILURE",
        "hostname": "backup-host",
        "timestamp": "2024-12-31 22:30:00",
        "snapshot_name": "",
        "total_snapshots": 1,
        "snapshot_info": "1 snapshot exists",
        "target": "db",
        "error": "quota exceeded",
    }


def test_webhook_payload_template_fills_nested_strings_and_keeps_strings_strings():
    """As snapshots.py sent them: `"{total_snapshots}"` is the string "3" (an n8n workflow
    comparing it with "3" must keep working)."""
    template = {
        "text": "{server_name} has {total_snapshots}",
        "{server_name}": "keys are not templated",
        "count": "{total_snapshots}",
        "id": "{server_id}",
        "fields": [
            {"name": "{droplet_name}", "values": ["{status}", "{total_snapshots}", 7, True, None]}
        ],
        "meta": {"host": "{hostname}", "unknown": "{nope}"},
    }
    assert webhook_payload(OK, template) == {
        "text": "web-1 has 3",
        "{server_name}": "keys are not templated",
        "count": "3",
        "id": "101",
        "fields": [{"name": "web-1", "values": ["SUCCESS", "3", 7, True, None]}],
        "meta": {"host": "backup-host", "unknown": "{nope}"},
    }


# -- the snapshots.py style (issue 21, items 3 and 6) -----------------------------------------

LEGACY = Style(LEGACY_STYLE)


def test_the_legacy_style_sends_the_old_scripts_built_in_telegram_texts():
    """snapshots.py's load_config() defaults, filled by text replacement."""
    web = replace(OK, server_name="web_main-1", snapshot_name="web_main-1-20250101033000")
    assert telegram_text(replace(web, total_snapshots=2), None, LEGACY) == (
        "*Snapshot Success*\nServer: `web_main-1`\nSnapshot: `web_main-1-20250101033000`\n"
        "Total: `2` snapshots",
        "Markdown",
    )
    assert telegram_text(FAILED, None, LEGACY) == (
        "*Snapshot Failed*\nServer: `db-1`\nError occurred during snapshot creation",
        "Markdown",
    )
    assert plain_text(FAILED, None, LEGACY) == (
        "*Snapshot Failed*\nServer: `db-1`\nError occurred during snapshot creation"
    )
    # A channel's own template still wins.
    assert telegram_text(OK, "{script} {server_name}", LEGACY)[0] == "snapshots.py web-1"


def test_the_legacy_style_sends_the_old_scripts_webhook_body_every_value_a_string():
    """`timestamp` is the host's local time (New York here), as snapshots.py wrote it."""
    assert webhook_payload(OK, None, LEGACY) == {
        "script": "snapshots.py",
        "provider": "digitalocean",
        "server": "web-1",
        "server_id": "101",
        "status": "SUCCESS",
        "hostname": "backup-host",
        "timestamp": "2024-12-31 22:30:00",
        "snapshot_name": "web-1-20250101033000",
        "total_snapshots": "3",
        "snapshot_info": "3 snapshots exist",
    }
    # After a failure: no snapshot was made, so `none`, even when the plan had named one;
    # and one snapshot is "1 snapshots exist", as the old wording had it.
    failed = replace(FAILED, snapshot_name="db-1-20250101033000")
    payload = webhook_payload(failed, None, LEGACY)
    assert (payload["status"], payload["snapshot_name"], payload["snapshot_info"]) == (
        "FAILURE",
        "none",
        "1 snapshots exist",
    )
    assert list(payload) == list(LEGACY_PAYLOAD)
    assert webhook_body(payload, LEGACY) == (
        b'{"script": "snapshots.py", "provider": "hetzner", "server": "db-1", '
        b'"server_id": "303", "status": "FAILURE", "hostname": "backup-host", '
        b'"timestamp": "2024-12-31 22:30:00", "snapshot_name": "none", '
        b'"total_snapshots": "1", "snapshot_info": "1 snapshots exist"}'
    )


def test_the_legacy_body_escapes_non_ascii_as_the_old_script_did():
    assert webhook_body({"server": "wéb"}, LEGACY) == b'{"server": "w\\u00e9b"}'
    assert webhook_body({"server": "wéb"}) == '{"server":"wéb"}'.encode()


def test_script_renders_the_programs_name_or_the_styles_or_the_setting():
    assert variables(OK)["script"] == "snapshot-policy"
    assert variables(OK, LEGACY)["script"] == "snapshots.py"
    assert variables(OK, Style(LEGACY_STYLE, "nightly.sh"))["script"] == "nightly.sh"
    assert webhook_payload(OK, None, Style(script="backup"))["script"] == "backup"
    # The default style keeps its own wording.
    assert variables(replace(OK, total_snapshots=1))["snapshot_info"] == "1 snapshot exists"
    assert variables(FAILED)["snapshot_name"] == ""


# -- restore drills (issue 22) ---------------------------------------------------------------

DRILLED = replace(
    OK,
    snapshot_name="web-1_20250101033000",
    total_snapshots=0,
    drill=Drilled("9001", "s-1vcpu-1gb", "nyc3", 42.4, True, "done"),
)
DRILL_FAILED = replace(
    DRILLED,
    status=FAILURE,
    error="the probe failed: probe failed (exit status 3)",
    drill=Drilled("9001", "s-1vcpu-1gb", "nyc3", 40.0, False, "probe"),
)


def test_a_drill_is_told_in_its_own_words_whatever_the_snapshot_templates():
    text, mode = telegram_text(DRILLED, "*OK* {server_name} {snapshot_name}")
    assert mode == "Markdown"
    assert text.splitlines()[:5] == [
        "✅ *Restore drill passed*",
        "Server: web-1 (id 101, digitalocean)",
        "Snapshot: web-1\\_20250101033000 (9001)",
        "Restored to: s-1vcpu-1gb in nyc3",
        "Restore time: 42s",
    ]
    assert "snapshots exist" not in text


def test_a_failed_drill_says_where_it_failed_and_that_its_server_is_left():
    text = plain_text(DRILL_FAILED, None)
    assert "❌ Restore drill failed" in text
    assert "Failed at: probe" in text and "Error: the probe failed" in text
    assert "Its server is NOT deleted yet: the next run deletes it" in text


def test_a_drill_webhook_payload_says_it_is_a_drill():
    payload = webhook_payload(DRILL_FAILED, {"text": "{server_name}"})
    assert payload["event"] == "drill" and payload["passed"] is False
    assert (payload["snapshot_id"], payload["machine_type"], payload["region"]) == (
        "9001",
        "s-1vcpu-1gb",
        "nyc3",
    )
    assert payload["restore_seconds"] == 40.0 and payload["server_deleted"] is False
    assert payload["stage"] == "probe" and payload["error"].startswith("the probe failed")


def test_a_summary_lists_drills_beside_snapshots():
    text = summary_plain_text([OK, DRILL_FAILED])
    assert "❌ web-1 (digitalocean): drill of web-1_20250101033000 failed at probe: " in text
    assert "✅ web-1 (digitalocean): web-1-20250101033000, 3 snapshots exist" in text
