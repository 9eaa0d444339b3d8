"""apprise notifications (issue 21, item 12) through the real apprise against the sandbox's
webhook sink (apprise's `json://` service): texts, pacing, retries, time limits and masking."""

from __future__ import annotations

import asyncio
import http.server
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from snapshot_policy.core import apprise_loader
from snapshot_policy.core.model import AppriseChannel, Delivery
from snapshot_policy.edges.notify import (
    CUT_OFF,
    LONGEST_TIME,
    apprise_send,
    deliver,
    time_allowed,
)
from tests.integration.test_notify_webhook import EVENT, FAILED, SENT_AT

KEY = "Zq7xK2mP9vR4tY8wB3nL6jH1"


def channel(sandbox, *names: str, **changes) -> AppriseChannel:
    urls = tuple(sandbox.apprise_url(f"{name}/{KEY}") for name in names or ("ops",))
    return replace(AppriseChannel(name="ops", urls=urls, secrets=urls), **changes)


def received(sandbox, name="ops"):
    return [d["json"] for d in sandbox.webhook_deliveries(f"{name}/{KEY}")]


def send(routes, sleeps=None, **options) -> list[Delivery]:
    sleeps = [] if sleeps is None else sleeps
    options.setdefault("sleep", sleeps.append)
    return deliver(routes, "http://unused/bot", lambda: SENT_AT, **options)


def test_the_telegram_texts_arrive_plain_first_line_as_title(sandbox):
    ok, failed = send([(EVENT, [channel(sandbox)]), (FAILED, [channel(sandbox)])])
    assert (ok, failed) == (
        Delivery("ops", "apprise", "web", True, 1, None),
        Delivery("ops", "apprise", "web", True, 1, None),
    )
    first, second = received(sandbox)
    assert (first["title"], first["type"]) == ("✅ Snapshot succeeded", "success")
    assert first["message"].splitlines() == [
        "Server: app-1 (id 301, hetzner)",
        "Snapshot: app-1-20250101030000",
        "2 snapshots exist",
        "Host: backup-host",
        "Time: 2025-01-01 03:00:00 UTC",
    ]
    assert (second["title"], second["type"]) == ("❌ Snapshot failed", "failure")
    assert "Error: server is locked" in second["message"]


def test_the_legacy_style_sends_snapshots_py_texts_unescaped(sandbox):
    send([(EVENT, [channel(sandbox, style="snapshots.py")])])
    [message] = received(sandbox)
    assert message["title"] == "*Snapshot Success*"
    assert message["message"] == (
        "Server: `app-1`\nSnapshot: `app-1-20250101030000`\nTotal: `2` snapshots"
    )


def test_a_summary_is_one_message_after_the_others_and_a_failure_makes_it_one(sandbox):
    summary = channel(sandbox, "sum", summary=True)
    deliveries = send([(EVENT, [summary, channel(sandbox)]), (FAILED, [summary])])
    assert [(d.channel, d.target) for d in deliveries] == [("ops", "web"), ("ops", None)]
    [message] = received(sandbox, "sum")
    assert message["title"] == "❌ Snapshot run: 1 succeeded, 1 failed"
    assert message["type"] == "failure"


def test_messages_to_one_url_keep_the_services_pace_after_a_burst(sandbox, monkeypatch):
    monkeypatch.setattr(apprise_send, "interval", lambda url: 5.5)
    sleeps: list[float] = []
    events = [replace(EVENT, target=f"t{i}") for i in range(5)]
    deliveries = send([(e, [channel(sandbox)]) for e in events], sleeps)
    assert all(d.ok for d in deliveries)
    assert len(received(sandbox)) == 5
    # The sleep is a recorder (no time passes): the window sees five messages at once and asks
    # the last two to wait the rest of the 16.5 s window of three.
    assert len(sleeps) == 2 and all(0 < s <= 16.5 for s in sleeps)


class _FastForward(asyncio.SelectorEventLoop):
    """An event loop whose clock a sleep moves forward: pacing waits take no real time, yet the
    run's deadline sees them pass, as it would in a real run."""

    ahead = 0.0

    def time(self) -> float:
        return super().time() + self.ahead


def test_twenty_messages_to_one_slow_paced_url_all_arrive_in_the_time_allowed(sandbox, monkeypatch):
    """ntfy and e-mail take one message per 5.5 s after a burst of 3: a fleet of 20 servers'
    per-target messages need 99 s of pacing, more than the one message's 60 s a run once
    allowed them (then "cut off: the run's time for notifications ran out", every run)."""
    monkeypatch.setattr(apprise_send, "interval", lambda url: 5.5)
    loop = _FastForward()
    monkeypatch.setattr(asyncio.events, "new_event_loop", lambda: loop)
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        loop.ahead += seconds

    events = [replace(EVENT, target=f"t{i}") for i in range(20)]
    deliveries = send([(e, [channel(sandbox)]) for e in events], sleep=sleep)
    assert [d.error for d in deliveries] == [None] * 20
    assert len(received(sandbox)) == 20
    assert 90 < sum(waited) < 100  # three per 16.5 s: the pace was kept, on the loop's clock


def test_a_fleet_too_large_for_its_pace_is_cut_off_at_the_longest_time(sandbox, monkeypatch):
    """Past LONGEST_TIME the per-target messages stop (README: use `summary: true`)."""
    monkeypatch.setattr(apprise_send, "interval", lambda url: 30.0)
    loop = _FastForward()
    monkeypatch.setattr(asyncio.events, "new_event_loop", lambda: loop)

    def sleep(seconds: float) -> None:
        loop.ahead += seconds

    events = [replace(EVENT, target=f"t{i}") for i in range(15)]
    deliveries = send([(e, [channel(sandbox)]) for e in events], sleep=sleep)
    assert [d.ok for d in deliveries[:12]] == [True] * 12  # 3 at once, then one per 30 s
    assert {d.error for d in deliveries[12:]} == {CUT_OFF}


def test_the_time_allowed_adds_the_longest_queues_pacing():
    default = AppriseChannel(name="ops", urls=("json://127.0.0.1/x",))
    assert time_allowed([default]) == 60.0  # 4 tries of 10 s, waits of 2, 4 and 8 s: 54 s
    assert time_allowed([default], [20 * 5.5, 3 * 5.5]) == 54.0 + 110.0
    assert time_allowed([default], [100 * 5.5]) == LONGEST_TIME


def test_without_apprise_the_deliveries_fail_and_the_run_goes_on(sandbox, monkeypatch):
    """The time allowed asks apprise for each URL's pace before anything is sent: its absence
    (or a plugin's quirk) is a failed delivery, not an exception out of `deliver`."""

    def missing():
        raise ImportError("No module named 'apprise'")

    monkeypatch.setattr(apprise_loader, "load", missing)
    [delivery] = send([(EVENT, [channel(sandbox)])])
    assert (delivery.ok, delivery.attempts) == (False, 0)
    assert "ImportError" in delivery.error and KEY not in delivery.error


def test_retries_follow_the_channels_backoff_and_the_error_is_masked(sandbox):
    sandbox.inject("error", service="webhook", status=502, count=None)
    sleeps: list[float] = []
    [delivery] = send([(EVENT, [channel(sandbox, retries=2, base_delay=1.5)])], sleeps)
    assert (delivery.ok, delivery.attempts) == (False, 3)
    assert sleeps == [1.5, 3.0]
    assert "error=502" in delivery.error and KEY not in delivery.error


class _Silent(http.server.BaseHTTPRequestHandler):
    """Reads a request and never answers it."""

    def do_POST(self):  # noqa: N802 -- the name http.server calls
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        threading.Event().wait(30)

    def log_message(self, *args):
        pass


@pytest.fixture
def silent():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"json://127.0.0.1:{server.server_address[1]}/{KEY}"
    server.shutdown()


def test_a_receiver_that_never_answers_ends_at_the_timeout_then_at_the_run_deadline(silent):
    slow = AppriseChannel(name="slow", urls=(silent,), timeout=0.3, retries=0, secrets=(silent,))
    [delivery] = send([(EVENT, [slow])])
    assert (delivery.ok, delivery.attempts, delivery.error) == (
        False,
        1,
        "no complete answer within 0.3s",
    )
    patient = replace(slow, timeout=1.5)
    started = datetime.now(timezone.utc)
    with records() as seen:
        [delivery] = send([(EVENT, [patient])], total_time=0.5)
        assert (delivery.ok, delivery.error) == (False, CUT_OFF)
        assert (datetime.now(timezone.utc) - started).total_seconds() < 5
        # The abandoned attempt ends on its socket's timeout after the run, and logs it: to
        # nobody, though the process has a handler that would take it.
        time.sleep(2.0)
    assert [name for name in seen if name.split(".")[0] == "apprise"] == []


@contextmanager
def records():
    """The names of the loggers of every record that reaches the root logger meanwhile."""
    seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.name)

    catcher = Catch()
    logging.getLogger().addHandler(catcher)
    try:
        yield seen
    finally:
        logging.getLogger().removeHandler(catcher)


def test_apprise_logs_nothing_anywhere_while_it_sends(sandbox, capsys):
    """Its lines can quote a URL: they become the delivery's masked error, and nothing else."""
    with records() as seen:
        sandbox.inject("error", service="webhook", status=500, count=None)
        send([(EVENT, [channel(sandbox, retries=0)])])
    assert not [name for name in seen if name.split(".")[0] == "apprise"]
    output = capsys.readouterr()
    assert KEY not in output.out + output.err
    # Put back as it was: apprise's own NullHandler, none of ours.
    assert not [h for h in logging.getLogger("apprise").handlers if type(h).__module__ != "logging"]
