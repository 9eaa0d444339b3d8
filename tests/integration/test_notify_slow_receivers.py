"""A receiver that answers one byte at a time (issue 19, item 7): a channel's `timeout` bounds a
whole attempt, connect to last byte, and a run's notifications together have a deadline.

The receiver is a tiny HTTP server on 127.0.0.1 in this file, serving webhooks and the
Telegram Bot API alike: it reads the request, then answers 200 one byte every TRICKLE_EVERY
seconds, so each read is quick and the answer takes TRICKLE_TAKES. Every call here must be
over well before that.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from snapshot_policy.core.model import TelegramChannel, WebhookChannel
from snapshot_policy.edges.notify import CUT_OFF, Event, deliver, time_allowed
from tests.integration.conftest import BOT_TOKEN

TRICKLE_EVERY = 0.2
ANSWER = (
    b'{"ok": true, "result": {"message_id": 1, "date": 0, "chat": {"id": 555, "type": "private"}}}'
)
TRICKLE_TAKES = len(ANSWER) * TRICKLE_EVERY  # about 18 s
WELL_BEFORE = TRICKLE_TAKES / 2

EVENT = Event(
    target="web",
    provider="hetzner",
    server_name="app-1",
    server_id="301",
    snapshot_name="app-1-20250101030000",
    total_snapshots=2,
    status="SUCCESS",
    error=None,
    hostname="backup-host",
    timestamp=datetime(2025, 1, 1, 3, tzinfo=timezone.utc),
)


class _Trickle(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        try:
            for byte in ANSWER:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(TRICKLE_EVERY)
        except OSError:  # the client hung up: what the tests want
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trickle():
    """The base URL of a receiver that answers one byte at a time."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def send(routes, base_url: str = "http://127.0.0.1:9/bot", **options):
    started = time.monotonic()
    deliveries = deliver(routes, base_url, lambda: EVENT.timestamp, sleep=lambda _: None, **options)
    return deliveries, time.monotonic() - started


def test_a_webhook_answering_a_byte_at_a_time_fails_at_its_timeout(trickle):
    channel = WebhookChannel(name="hook", url=f"{trickle}/hook", timeout=1, retries=1, base_delay=0)
    [delivery], took = send([(EVENT, [channel])])
    assert (delivery.ok, delivery.attempts, delivery.error) == (
        False,
        2,
        "no complete answer within 1s",
    )
    assert took < WELL_BEFORE


def test_telegram_answering_a_byte_at_a_time_fails_at_its_timeout(trickle):
    channel = TelegramChannel(
        name="ops", bot_token=BOT_TOKEN, chat_id="555", timeout=1, retries=1, base_delay=0
    )
    [delivery], took = send([(EVENT, [channel])], f"{trickle}/bot")
    assert (delivery.ok, delivery.attempts, delivery.error) == (
        False,
        2,
        "TimedOut: no complete answer within 1s",
    )
    assert took < WELL_BEFORE


def test_a_runs_notifications_are_cut_off_at_their_deadline_and_reported_failed(trickle):
    """Each attempt may take 30 s, but all of the run's messages together only 1 s: the one being
    sent is cut off, those after it in its queue are not sent, and all of them say so."""
    hook = WebhookChannel(name="hook", url=f"{trickle}/hook", timeout=30, retries=0)
    bot = TelegramChannel(name="ops", bot_token=BOT_TOKEN, chat_id="555", timeout=30, retries=0)
    events = [replace(EVENT, target=name) for name in ("a", "b")]
    deliveries, took = send(
        [(event, [hook, bot]) for event in events], f"{trickle}/bot", total_time=1.0
    )
    assert [(d.channel, d.target, d.ok, d.attempts, d.error) for d in deliveries] == [
        ("hook", "a", False, 1, CUT_OFF),
        ("ops", "a", False, 1, CUT_OFF),
        ("hook", "b", False, 0, CUT_OFF),
        ("ops", "b", False, 0, CUT_OFF),
    ]
    assert took < WELL_BEFORE


def test_the_time_allowed_is_the_longest_channels_own_schedule_within_one_to_five_minutes():
    # 4 tries of 10 s, waits 2 + 4 + 8
    default = WebhookChannel(name="hook", url="https://example.com/")
    assert time_allowed([default]) == 60.0 and time_allowed([]) == 60.0
    patient = replace(default, timeout=30, retries=3, base_delay=5)  # 4 × 30 + 5 + 10 + 20
    assert time_allowed([default, patient]) == 155.0
    assert time_allowed([replace(default, timeout=600)]) == 300.0
