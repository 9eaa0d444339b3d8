"""Telegram notifications through the real python-telegram-bot against the sandbox."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone

from tests.integration.conftest import BOT_TOKEN

from snapshot_policy.model import Delivery, TelegramChannel
from snapshot_policy.notify import Event, deliver
from snapshot_policy.notify.messages import plain_text, telegram_text

EVENT = Event(
    target="web", provider="digitalocean", server_name="web-1", server_id="101",
    snapshot_name="web-1-20250101030000", total_snapshots=3, status="SUCCESS", error=None,
    hostname="backup-host", timestamp=datetime(2025, 1, 1, 3, tzinfo=timezone.utc),
)
FAILED = replace(EVENT, target="db", server_name="db-1", server_id="103", snapshot_name="",
                 status="FAILURE", error="quota exceeded")


def channel(**changes) -> TelegramChannel:
    return replace(TelegramChannel(name="ops", bot_token=BOT_TOKEN, chat_id="555"), **changes)


def send(sandbox, routes, sleeps=None):
    sleeps = [] if sleeps is None else sleeps
    return deliver(routes, sandbox.telegram_base_url, lambda: EVENT.timestamp, sleep=sleeps.append)


def received(sandbox) -> list[tuple]:
    return [(m["chat_id"], m["text"], m["parse_mode"], m["delivered"]) for m in sandbox.telegram_messages()]


def test_default_message_is_received_with_markdown(sandbox):
    deliveries = send(sandbox, [(EVENT, [channel()])])
    assert deliveries == [Delivery("ops", "telegram", "web", True, 1, None)]
    assert received(sandbox) == [(555, telegram_text(EVENT, None)[0], "Markdown", True)]
    assert received(sandbox)[0][1].startswith("✅ *Snapshot succeeded*\nServer: web-1 (id 101, digitalocean)")


def test_each_channel_uses_its_own_template_for_success_and_failure(sandbox):
    ops = channel(message_success="*OK* {server_name}", message_failure="*FAILED* {server_name}")
    team = channel(name="team", chat_id="-100777", message_success="{snapshot_info} on {droplet_name}")
    deliveries = send(sandbox, [(EVENT, [ops, team]), (FAILED, [ops, team])])
    assert [(d.channel, d.target, d.ok) for d in deliveries] == [
        ("ops", "web", True), ("team", "web", True), ("ops", "db", True), ("team", "db", True)]
    assert received(sandbox) == [
        (555, "*OK* web-1", "Markdown", True),
        (-100777, "3 snapshots exist on web-1", "Markdown", True),
        (555, "*FAILED* db-1", "Markdown", True),
        (-100777, telegram_text(FAILED, None)[0], "Markdown", True),
    ]


def test_escaped_values_pass_telegrams_entity_check(sandbox):
    event = replace(EVENT, server_name="db_main-1", snapshot_name="db_main*1_x")
    ops = channel(message_success="*Done*: {server_name} _{snapshot_name}_ `{server_name}`")
    assert send(sandbox, [(event, [ops]), (event, [channel()])])[0].ok
    texts = [m["text"] for m in sandbox.telegram_messages()]
    assert texts[0] == "*Done*: db\\_main-1 _db_\\__main*1_\\__x_ `db_main-1`"
    assert [m["delivered"] for m in sandbox.telegram_messages()] == [True, True]


def test_malformed_template_markup_falls_back_to_plain_text_once(sandbox):
    event = replace(EVENT, server_name="db_main-1")
    sleeps: list[float] = []
    ops = channel(message_success="*Snapshot of {server_name}")  # the template's own * is unclosed
    assert send(sandbox, [(event, [ops])], sleeps) == [Delivery("ops", "telegram", "web", True, 2, None)]
    first, second = sandbox.telegram_messages()
    assert (first["text"], first["parse_mode"], first["delivered"]) == ("*Snapshot of db_main-1", "Markdown", False)
    assert "can't parse entities" in first["error"]
    assert (second["text"], second["parse_mode"], second["delivered"]) == ("*Snapshot of db_main-1", None, True)
    assert second["text"] == plain_text(event, ops.message_success)
    assert sleeps == []


def test_flood_control_retry_after_is_honoured(sandbox):
    sandbox.inject("rate_limit", service="telegram", count=1, retry_after=3)
    sleeps: list[float] = []
    assert send(sandbox, [(EVENT, [channel()])], sleeps) == [Delivery("ops", "telegram", "web", True, 2, None)]
    assert sleeps == [3]
    assert len(sandbox.telegram_messages()) == 1


def test_a_flood_control_wait_too_long_to_honour_ends_the_delivery(sandbox):
    sandbox.inject("rate_limit", service="telegram", count=1, retry_after=3600)
    sleeps: list[float] = []
    [delivery] = send(sandbox, [(EVENT, [channel()])], sleeps)
    assert (delivery.ok, delivery.attempts, sleeps) == (False, 1, [])
    assert delivery.error.startswith("RetryAfter: ") and delivery.error.endswith("; not waiting 3600 s")
    assert sandbox.telegram_messages() == []


def test_server_errors_are_retried_with_doubling_delays(sandbox):
    sandbox.inject("error", service="telegram", status=500, count=2)
    sleeps: list[float] = []
    assert send(sandbox, [(EVENT, [channel(base_delay=2.0)])], sleeps)[0].attempts == 3
    assert sleeps == [2.0, 4.0]
    assert received(sandbox)[0][3] is True


def test_persistent_errors_end_in_a_failed_delivery_after_all_retries(sandbox):
    sandbox.inject("error", service="telegram", status=502, count=None)
    sleeps: list[float] = []
    [delivery] = send(sandbox, [(EVENT, [channel(retries=3, base_delay=0.5)])], sleeps)
    assert (delivery.ok, delivery.attempts, delivery.error) == (False, 4, "NetworkError: Bad Gateway")
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_timed_out_request_is_retried(sandbox):
    sandbox.inject("delay", service="telegram", seconds=0.5, count=1)
    [delivery] = send(sandbox, [(EVENT, [channel(timeout=0.1)])])
    assert (delivery.ok, delivery.attempts) == (True, 2)


def test_a_bad_token_fails_at_once_without_showing_the_token(sandbox):
    token = "987654:AAHbadTokenNotKnownToTheSandbox_x1"
    sleeps: list[float] = []
    [delivery] = send(sandbox, [(EVENT, [channel(bot_token=token)])], sleeps)
    assert (delivery.ok, delivery.attempts, sleeps) == (False, 1, [])
    assert delivery.error and token not in delivery.error and "987654" not in delivery.error


def test_each_delivery_is_logged_once_without_the_token(sandbox):
    lines: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = lines.append
    logger = logging.getLogger("snapshot_policy.notify")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        send(sandbox, [(EVENT, [channel(), channel(name="broken", bot_token="555:" + "Wrong" * 8)])])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert [(r.levelname, r.getMessage()) for r in lines] == [
        ("INFO", "notify: telegram 'ops', target web: sent (1 request(s))"),
        ("WARNING", "notify: telegram 'broken', target web: failed after 1 request(s): InvalidToken: Unauthorized"),
    ]


def test_an_unreachable_api_fails_without_raising_or_showing_a_url():
    routes = [(EVENT, [channel(retries=1, timeout=0.5)])]
    [delivery] = deliver(routes, "http://127.0.0.1:9/bot", lambda: EVENT.timestamp, sleep=lambda _: None)
    assert (delivery.ok, delivery.attempts) == (False, 2)
    assert BOT_TOKEN not in delivery.error and "127.0.0.1" not in delivery.error


def test_summary_channel_gets_one_message_for_the_whole_run(sandbox):
    summary = channel(name="digest", chat_id="777", summary=True)
    other = replace(EVENT, target="web2", server_name="web-2", server_id="102")
    deliveries = send(sandbox, [(EVENT, [summary, channel()]), (FAILED, [summary]), (other, [summary])])
    assert [(d.channel, d.target, d.ok) for d in deliveries] == [("ops", "web", True), ("digest", None, True)]
    digest = [m for m in sandbox.telegram_messages() if m["chat_id"] == 777]
    assert len(digest) == 1
    assert digest[0]["text"].splitlines()[:4] == [
        "❌ *Snapshot run: 2 succeeded, 1 failed*",
        "❌ db-1 (digitalocean): quota exceeded",
        "✅ web-1 (digitalocean): web-1-20250101030000, 3 snapshots exist",
        "✅ web-2 (digitalocean): web-1-20250101030000, 3 snapshots exist",
    ]


def test_a_plain_http_api_off_this_machine_is_refused_before_the_token_is_sent():
    """SPEC §5 invariant 11: the bot token is part of every request URL."""
    sleeps: list[float] = []
    routes = [(EVENT, [channel(), channel(name="digest", summary=True)])]
    deliveries = deliver(routes, "http://api.telegram.example/bot", lambda: EVENT.timestamp, sleep=sleeps.append)
    refusal = ("http://api.telegram.example is not https: the bot token would cross the network in clear text; "
               "use https, or http only to this machine (127.0.0.1, ::1, localhost)")
    assert deliveries == [Delivery("ops", "telegram", "web", False, 0, refusal), Delivery("digest", "telegram", None, False, 0, refusal)]
    assert sleeps == []
