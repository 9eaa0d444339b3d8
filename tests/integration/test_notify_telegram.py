"""Telegram notifications through the real python-telegram-bot against the sandbox."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone

from snapshot_policy.core.model import Delivery, TelegramChannel
from snapshot_policy.edges.notify import Event, deliver, telegram
from snapshot_policy.edges.notify.messages import plain_text, summary_text, telegram_text
from tests.integration.conftest import BOT_TOKEN

EVENT = Event(
    target="web",
    provider="digitalocean",
    server_name="web-1",
    server_id="101",
    snapshot_name="web-1-20250101030000",
    total_snapshots=3,
    status="SUCCESS",
    error=None,
    hostname="backup-host",
    timestamp=datetime(2025, 1, 1, 3, tzinfo=timezone.utc),
)
FAILED = replace(
    EVENT,
    target="db",
    server_name="db-1",
    server_id="103",
    snapshot_name="",
    status="FAILURE",
    error="quota exceeded",
)


def channel(**changes) -> TelegramChannel:
    return replace(TelegramChannel(name="ops", bot_token=BOT_TOKEN, chat_id="555"), **changes)


def send(sandbox, routes, sleeps=None):
    sleeps = [] if sleeps is None else sleeps
    return deliver(routes, sandbox.telegram_base_url, lambda: EVENT.timestamp, sleep=sleeps.append)


def received(sandbox) -> list[tuple]:
    return [
        (m["chat_id"], m["text"], m["parse_mode"], m["delivered"])
        for m in sandbox.telegram_messages()
    ]


def by_chat(sandbox) -> dict[int, list[str]]:
    """The texts each chat received, in the order it received them."""
    chats: dict[int, list[str]] = {}
    for m in sandbox.telegram_messages():
        chats.setdefault(m["chat_id"], []).append(m["text"])
    return chats


def connections(sandbox, monkeypatch) -> list[tuple]:
    """The TCP connections the sandbox accepts from now on, one entry each (its request log
    has no connections, so the server's per-connection hook is wrapped)."""
    accepted: list[tuple] = []
    server = sandbox._httpd
    process = server.process_request

    def counted(request, client_address):
        accepted.append(client_address)
        process(request, client_address)

    monkeypatch.setattr(server, "process_request", counted)
    return accepted


def test_default_message_is_received_with_markdown(sandbox):
    deliveries = send(sandbox, [(EVENT, [channel()])])
    assert deliveries == [Delivery("ops", "telegram", "web", True, 1, None)]
    assert received(sandbox) == [(555, telegram_text(EVENT, None)[0], "Markdown", True)]
    assert received(sandbox)[0][1].startswith(
        "✅ *Snapshot succeeded*\nServer: web-1 (id 101, digitalocean)"
    )


def test_each_channel_uses_its_own_template_for_success_and_failure(sandbox):
    ops = channel(message_success="*OK* {server_name}", message_failure="*FAILED* {server_name}")
    team = channel(
        name="team", chat_id="-100777", message_success="{snapshot_info} on {droplet_name}"
    )
    deliveries = send(sandbox, [(EVENT, [ops, team]), (FAILED, [ops, team])])
    assert [(d.channel, d.target, d.ok) for d in deliveries] == [
        ("ops", "web", True),
        ("team", "web", True),
        ("ops", "db", True),
        ("team", "db", True),
    ]
    assert by_chat(sandbox) == {  # the two chats are served concurrently, each in order
        555: ["*OK* web-1", "*FAILED* db-1"],
        -100777: ["3 snapshots exist on web-1", telegram_text(FAILED, None)[0]],
    }
    assert all(
        m["parse_mode"] == "Markdown" and m["delivered"] for m in sandbox.telegram_messages()
    )


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
    assert send(sandbox, [(event, [ops])], sleeps) == [
        Delivery("ops", "telegram", "web", True, 2, None)
    ]
    first, second = sandbox.telegram_messages()
    assert (first["text"], first["parse_mode"], first["delivered"]) == (
        "*Snapshot of db_main-1",
        "Markdown",
        False,
    )
    assert "can't parse entities" in first["error"]
    assert (second["text"], second["parse_mode"], second["delivered"]) == (
        "*Snapshot of db_main-1",
        None,
        True,
    )
    assert second["text"] == plain_text(event, ops.message_success)
    assert sleeps == []


def test_flood_control_retry_after_is_honoured(sandbox):
    sandbox.inject("rate_limit", service="telegram", count=1, retry_after=3)
    sleeps: list[float] = []
    assert send(sandbox, [(EVENT, [channel()])], sleeps) == [
        Delivery("ops", "telegram", "web", True, 2, None)
    ]
    assert sleeps == [3]
    assert len(sandbox.telegram_messages()) == 1


def test_a_flood_control_wait_too_long_to_honour_ends_the_delivery(sandbox):
    sandbox.inject("rate_limit", service="telegram", count=1, retry_after=3600)
    sleeps: list[float] = []
    [delivery] = send(sandbox, [(EVENT, [channel()])], sleeps)
    assert (delivery.ok, delivery.attempts, sleeps) == (False, 1, [])
    assert delivery.error.startswith("RetryAfter: ") and delivery.error.endswith(
        "; not waiting 3600 s"
    )
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
    assert (delivery.ok, delivery.attempts, delivery.error) == (
        False,
        4,
        "NetworkError: Bad Gateway",
    )
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
    logger = logging.getLogger("snapshot_policy.edges.notify")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        send(
            sandbox, [(EVENT, [channel(), channel(name="broken", bot_token="555:" + "Wrong" * 8)])]
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert [(r.levelname, r.getMessage()) for r in lines] == [
        ("INFO", "notify: telegram 'ops', target web: sent (1 request(s))"),
        (
            "WARNING",
            "notify: telegram 'broken', target web: failed after 1 request(s): "
            "InvalidToken: Unauthorized",
        ),
    ]


def test_an_unreachable_api_fails_without_raising_or_showing_a_url():
    routes = [(EVENT, [channel(retries=1, timeout=0.5)])]
    [delivery] = deliver(
        routes, "http://127.0.0.1:9/bot", lambda: EVENT.timestamp, sleep=lambda _: None
    )
    assert (delivery.ok, delivery.attempts) == (False, 2)
    assert BOT_TOKEN not in delivery.error and "127.0.0.1" not in delivery.error


def test_summary_channel_gets_one_message_for_the_whole_run(sandbox):
    summary = channel(name="digest", chat_id="777", summary=True)
    other = replace(EVENT, target="web2", server_name="web-2", server_id="102")
    deliveries = send(
        sandbox, [(EVENT, [summary, channel()]), (FAILED, [summary]), (other, [summary])]
    )
    assert [(d.channel, d.target, d.ok) for d in deliveries] == [
        ("ops", "web", True),
        ("digest", None, True),
    ]
    digest = [m for m in sandbox.telegram_messages() if m["chat_id"] == 777]
    assert len(digest) == 1
    assert digest[0]["text"].splitlines()[:4] == [
        "❌ *Snapshot run: 2 succeeded, 1 failed*",
        "❌ db-1 (digitalocean): quota exceeded",
        "✅ web-1 (digitalocean): web-1-20250101030000, 3 snapshots exist",
        "✅ web-2 (digitalocean): web-1-20250101030000, 3 snapshots exist",
    ]


def test_a_plain_http_api_off_this_machine_is_refused_before_the_token_is_sent():
    """docs/promises.md §5 invariant 11: the bot token is part of every request URL."""
    sleeps: list[float] = []
    routes = [(EVENT, [channel(), channel(name="digest", summary=True)])]
    deliveries = deliver(
        routes, "http://api.telegram.example/bot", lambda: EVENT.timestamp, sleep=sleeps.append
    )
    refusal = (
        "http://api.telegram.example is not https: "
        "the bot token would cross the network in clear text; "
        "use https, or http only to this machine (127.0.0.1, ::1, localhost)"
    )
    assert deliveries == [
        Delivery("ops", "telegram", "web", False, 0, refusal),
        Delivery("digest", "telegram", None, False, 0, refusal),
    ]
    assert sleeps == []


def numbered(count: int) -> list[Event]:
    return [
        replace(EVENT, target=f"t{i:02d}", server_name=f"srv-{i:02d}", server_id=str(1000 + i))
        for i in range(count)
    ]


def test_fifty_chats_all_get_their_message_over_one_pool_of_connections(sandbox, monkeypatch):
    """One client per run: a new client per message opened a connection per message (50 here)."""
    accepted = connections(sandbox, monkeypatch)
    events = numbered(50)
    routes = [
        (event, [channel(name=f"chat{i}", chat_id=str(5000 + i))]) for i, event in enumerate(events)
    ]
    sleeps: list[float] = []
    deliveries = send(sandbox, routes, sleeps)
    assert deliveries == [
        Delivery(f"chat{i}", "telegram", e.target, True, 1, None) for i, e in enumerate(events)
    ]
    assert by_chat(sandbox) == {5000 + i: [telegram_text(e, None)[0]] for i, e in enumerate(events)}
    assert 1 <= len(accepted) <= telegram.POOL
    # About 30 messages a second per bot: past the 30th, each waits for its slot (under a second).
    assert 1 <= len(sleeps) <= 20 and all(0 < s <= 1 for s in sleeps)


def test_each_chat_gets_its_messages_in_order_paced_and_its_summary_last(sandbox):
    events = numbered(4)
    chats = [channel(name=f"chat{c}", chat_id=str(700 + c)) for c in range(3)]
    digest = channel(name="digest", chat_id="700", summary=True)  # the same bot and chat as chat0
    sleeps: list[float] = []
    deliveries = send(sandbox, [(event, [*chats, digest]) for event in events], sleeps)
    assert [(d.channel, d.target) for d in deliveries] == [
        *((f"chat{c}", e.target) for e in events for c in range(3)),
        ("digest", None),
    ]
    assert all(d.ok and d.attempts == 1 for d in deliveries)
    texts = [telegram_text(e, None)[0] for e in events]
    assert by_chat(sandbox) == {700: [*texts, summary_text(events)[0]], 701: texts, 702: texts}
    # One message a second to a chat, in bursts of three: chat 700's 4th and 5th messages
    # waited their turn, and the 4th of 701 and of 702.
    assert len(sleeps) == 4 and all(0 < s <= 3 for s in sleeps)


def test_a_group_gets_at_most_twenty_messages_a_minute(sandbox):
    events = numbered(21)
    sleeps: list[float] = []
    deliveries = send(sandbox, [(event, [channel(chat_id="-100777")]) for event in events], sleeps)
    assert all(d.ok for d in deliveries)
    assert by_chat(sandbox) == {-100777: [telegram_text(e, None)[0] for e in events]}
    assert len(sleeps) == 18 and all(
        0 < s <= 3 for s in sleeps[:17]
    )  # a burst of three, then one a second
    assert 55 < sleeps[17] <= 60  # the 21st waits until a minute after the first


def test_flood_control_on_one_chat_keeps_its_order_and_holds_no_other_chat_back(sandbox):
    sandbox.inject("rate_limit", service="telegram", count=1, retry_after=5)
    events = numbered(3)
    sleeps: list[float] = []
    routes = [
        (event, [channel(chat_id="800"), channel(name="other", chat_id="801")]) for event in events
    ]
    deliveries = send(sandbox, routes, sleeps)
    assert all(d.ok for d in deliveries) and sum(d.attempts for d in deliveries) == 7
    texts = [telegram_text(e, None)[0] for e in events]
    assert by_chat(sandbox) == {800: texts, 801: texts}
    assert 5 in sleeps  # the advised wait, exactly, for the message that met it
