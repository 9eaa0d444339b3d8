"""Webhook notifications through the real httpx against the sandbox's webhook sink."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import pytest

from snapshot_policy.core import transport
from snapshot_policy.core.model import Delivery, TelegramChannel, WebhookChannel
from snapshot_policy.edges.notify import Event, deliver, webhook
from tests.integration.conftest import BOT_TOKEN
from tests.integration.test_notify_telegram import connections

# {timestamp} is the host's local time; the machine's own zone decides it here.
STAMP = datetime(2025, 1, 1, 3, tzinfo=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")

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
FAILED = replace(EVENT, status="FAILURE", snapshot_name="", error="server is locked")
# The run's clock: a signature is dated by it, never by the machine's wall clock.
SENT_AT = datetime(2025, 1, 1, 3, 0, 42, tzinfo=timezone.utc)


def hook(sandbox, **changes) -> WebhookChannel:
    return replace(WebhookChannel(name="hook", url=sandbox.webhook_url("ops")), **changes)


def send(channel, event=EVENT, sleeps=None) -> Delivery:
    sleeps = [] if sleeps is None else sleeps
    [delivery] = deliver(
        [(event, [channel])], "http://unused/bot", lambda: SENT_AT, sleep=sleeps.append
    )
    return delivery


def test_default_payload_is_posted_as_compact_json(sandbox):
    assert send(hook(sandbox), FAILED) == Delivery("hook", "webhook", "web", True, 1, None)
    [received] = sandbox.webhook_deliveries("ops")
    assert received["method"] == "POST"
    assert received["headers"]["content-type"] == "application/json"
    assert "x-snapshot-policy-signature" not in received["headers"]
    assert received["json"] == {
        "script": "snapshot-policy",
        "provider": "hetzner",
        "server": "app-1",
        "server_id": "301",
        "status": "FAILURE",
        "hostname": "backup-host",
        "timestamp": STAMP,
        "snapshot_name": "",
        "total_snapshots": 2,
        "snapshot_info": "2 snapshots exist",
        "target": "web",
        "error": "server is locked",
    }
    assert received["body"] == json.dumps(received["json"], separators=(",", ":"))


def test_custom_payload_and_extra_headers_are_sent(sandbox):
    channel = hook(
        sandbox,
        payload_success={"text": "✅ {server_name}", "blocks": [{"count": "{total_snapshots}"}]},
        payload_failure={"text": "failed"},
        headers={"X-Team": "ops", "Content-Type": "text/plain"},
    )
    assert send(channel).ok and send(channel, FAILED).ok
    first, second = sandbox.webhook_deliveries("ops")
    assert first["body"] == '{"text":"✅ app-1","blocks":[{"count":"2"}]}'
    assert first["headers"]["x-team"] == "ops"
    assert first["headers"]["content-type"] == "application/json"
    assert second["json"] == {"text": "failed"}


def verifies(secret: str, received: dict, event_id: str | None = None) -> bool:
    """The receiver's check from notify/webhook.py's docstring (and the README)."""
    stamp = received["headers"]["x-snapshot-policy-timestamp"]
    event = received["headers"]["x-snapshot-policy-event-id"] if event_id is None else event_id
    signed = stamp.encode() + b"." + event.encode() + b"." + received["body"].encode()
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received["headers"]["x-snapshot-policy-signature"])


def test_signature_verifies_with_the_documented_recipe_and_is_dated_by_the_run_clock(sandbox):
    secret = "correct horse battery staple"
    assert send(hook(sandbox, secret=secret)).ok
    [received] = sandbox.webhook_deliveries("ops")
    assert verifies(secret, received)
    assert received["headers"]["x-snapshot-policy-timestamp"] == str(int(SENT_AT.timestamp()))


def test_the_event_id_is_signed_so_a_replay_cannot_pass_under_a_new_id(sandbox):
    secret = "correct horse battery staple"
    assert send(hook(sandbox, secret=secret)).ok
    [received] = sandbox.webhook_deliveries("ops")
    assert not verifies(secret, received, event_id=str(uuid.uuid4()))
    assert not verifies(secret, received, event_id="")  # nor by the recipe that signed no id


def test_each_delivery_has_its_own_event_id_signed_or_not(sandbox):
    assert (
        send(hook(sandbox, secret="s3cret-s3cret")).ok
        and send(hook(sandbox, secret="s3cret-s3cret")).ok
        and send(hook(sandbox)).ok
    )
    ids = [d["headers"]["x-snapshot-policy-event-id"] for d in sandbox.webhook_deliveries("ops")]
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_a_retry_repeats_the_event_id_so_the_receiver_can_drop_the_duplicate(sandbox):
    """The receiver handled the first POST but its answer was lost: the retry is the same event."""
    secret = "correct horse battery staple"
    sandbox.inject("lose_reply", service="webhook", count=1)
    sleeps: list[float] = []
    assert send(hook(sandbox, secret=secret), sleeps=sleeps) == Delivery(
        "hook", "webhook", "web", True, 2, None
    )
    first, retry = sandbox.webhook_deliveries("ops")
    assert (
        first["headers"]["x-snapshot-policy-event-id"]
        == retry["headers"]["x-snapshot-policy-event-id"]
    )
    assert first["body"] == retry["body"]
    assert verifies(secret, first) and verifies(secret, retry)


def test_a_channel_header_cannot_replace_the_event_id(sandbox):
    assert send(hook(sandbox, headers={"X-Snapshot-Policy-Event-Id": "fixed"})).ok
    [received] = sandbox.webhook_deliveries("ops")
    assert received["headers"]["x-snapshot-policy-event-id"] != "fixed"


def test_server_errors_and_dropped_connections_are_retried_with_doubling_delays(sandbox):
    sandbox.inject("error", service="webhook", status=500, count=1)
    sandbox.inject("drop", service="webhook", count=2)
    sleeps: list[float] = []
    assert send(hook(sandbox, base_delay=1.5), sleeps=sleeps) == Delivery(
        "hook", "webhook", "web", True, 4, None
    )
    assert sleeps == [1.5, 3.0, 6.0]
    assert len(sandbox.webhook_deliveries("ops")) == 1


def test_a_client_error_is_not_retried(sandbox):
    sandbox.inject("error", service="webhook", status=400, count=None)
    sleeps: list[float] = []
    delivery = send(hook(sandbox), sleeps=sleeps)
    assert (delivery.ok, delivery.attempts, delivery.error, sleeps) == (
        False,
        1,
        "HTTP 400 Bad Request",
        [],
    )


def test_retry_after_is_honoured_on_429(sandbox):
    sandbox.inject("rate_limit", service="webhook", count=1, retry_after=7)
    sleeps: list[float] = []
    assert send(hook(sandbox), sleeps=sleeps).attempts == 2
    assert sleeps == [7.0]


def test_a_retry_after_too_long_to_wait_ends_the_delivery(sandbox):
    sandbox.inject("rate_limit", service="webhook", count=1, retry_after=3600)
    sleeps: list[float] = []
    delivery = send(hook(sandbox), sleeps=sleeps)
    assert (delivery.ok, delivery.attempts, sleeps) == (False, 1, [])
    assert delivery.error == "HTTP 429 Too Many Requests; not waiting 3600 s"


def test_a_webhook_that_never_answers_in_time_fails_after_retries(sandbox):
    sandbox.inject("delay", service="webhook", seconds=0.4, count=None)
    sleeps: list[float] = []
    delivery = send(hook(sandbox, timeout=0.1, retries=2, base_delay=1.0), sleeps=sleeps)
    assert (delivery.ok, delivery.attempts, sleeps) == (False, 3, [1.0, 2.0])
    assert delivery.error == "no complete answer within 0.1s"


def test_an_unreachable_webhook_fails_without_raising_or_showing_its_url():
    url = "http://127.0.0.1:9/hooks/T0KENinTheUrl-abcdef"
    [delivery] = deliver(
        [(EVENT, [WebhookChannel(name="hook", url=url, retries=0)])],
        "http://unused/bot",
        lambda: SENT_AT,
    )
    assert (delivery.ok, delivery.attempts) == (False, 1)
    assert delivery.error.startswith("ConnectError") and "T0KENinTheUrl" not in delivery.error


def test_plain_http_off_this_machine_is_refused_before_any_connection():
    """docs/promises.md §5 invariant 11: the URL (a credential for Slack-style hooks) and headers
    never go out in clear text."""
    url = "http://example.invalid/hooks/T0KENinTheUrl-abcdef"
    sleeps: list[float] = []
    channel = WebhookChannel(name="hook", url=url, headers={"Authorization": "Bearer abc"})
    [delivery] = deliver(
        [(EVENT, [channel])], "http://unused/bot", lambda: SENT_AT, sleep=sleeps.append
    )
    assert (delivery.ok, delivery.attempts, sleeps) == (False, 0, [])
    assert delivery.error == (
        "http://example.invalid is not https: the webhook's URL and headers would cross the "
        "network in clear text; "
        "use https, or http only to this machine (127.0.0.1, ::1, localhost)"
    )


def test_plain_http_to_this_machine_is_allowed(sandbox):
    assert sandbox.webhook_url("ops").startswith("http://127.0.0.1:")
    assert send(hook(sandbox)).ok
    localhost = sandbox.webhook_url("ops").replace("127.0.0.1", "localhost")
    assert send(hook(sandbox, url=localhost)).ok
    assert len(sandbox.webhook_deliveries("ops")) == 2


def test_each_url_gets_its_payloads_in_order_over_one_pool_of_connections(sandbox, monkeypatch):
    """Thirty hooks served concurrently, each in order; a client per payload opened 60
    connections."""
    accepted = connections(sandbox, monkeypatch)
    hooks = [hook(sandbox, name=f"hook{h}", url=sandbox.webhook_url(f"h{h}")) for h in range(30)]
    events = [EVENT, FAILED]
    deliveries = deliver(
        [(event, hooks) for event in events], "http://unused/bot", lambda: SENT_AT, sleep=[].append
    )
    assert [(d.channel, d.ok, d.attempts) for d in deliveries] == [
        (f"hook{h}", True, 1) for _ in events for h in range(30)
    ]
    for h in range(30):
        assert [d["json"]["status"] for d in sandbox.webhook_deliveries(f"h{h}")] == [
            "SUCCESS",
            "FAILURE",
        ]
    assert 1 <= len(accepted) <= webhook.POOL


def test_telegram_and_webhook_deliveries_come_back_in_the_order_of_the_routes(sandbox):
    chat = TelegramChannel(name="chat", bot_token=BOT_TOKEN, chat_id="555")
    routes = [(EVENT, [hook(sandbox), chat]), (FAILED, [chat, hook(sandbox)])]
    deliveries = deliver(routes, sandbox.telegram_base_url, lambda: SENT_AT, sleep=[].append)
    assert [(d.channel, d.ok, d.attempts) for d in deliveries] == [
        ("hook", True, 1),
        ("chat", True, 1),
        ("chat", True, 1),
        ("hook", True, 1),
    ]
    assert [d["json"]["status"] for d in sandbox.webhook_deliveries("ops")] == [
        "SUCCESS",
        "FAILURE",
    ]
    assert [m["text"].splitlines()[0] for m in sandbox.telegram_messages()] == [
        "✅ *Snapshot succeeded*",
        "❌ *Snapshot failed*",
    ]


def test_the_snapshots_py_style_posts_the_old_scripts_body_and_signs_those_bytes(sandbox):
    """Issue 21, item 3: every value a string, `", "` and `": "` between items, no target or
    error; after a failure `none`. A secret signs exactly the bytes sent."""
    channel = hook(sandbox, style="snapshots.py", secret="s3cret")
    assert send(channel, replace(FAILED, server_name="äpp-1")).ok
    [received] = sandbox.webhook_deliveries("ops")
    assert received["body"] == (
        '{"script": "snapshots.py", "provider": "hetzner", "server": "\\u00e4pp-1", '
        '"server_id": "301", "status": "FAILURE", "hostname": "backup-host", '
        f'"timestamp": "{STAMP}", "snapshot_name": "none", "total_snapshots": "2", '
        '"snapshot_info": "2 snapshots exist"}'
    )
    headers = received["headers"]
    signed = (
        headers["x-snapshot-policy-timestamp"].encode()
        + b"."
        + headers["x-snapshot-policy-event-id"].encode()
        + b"."
        + received["body"].encode()
    )
    expected = "sha256=" + hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert headers["x-snapshot-policy-signature"] == expected


def test_a_channels_script_setting_names_the_sender(sandbox):
    assert send(hook(sandbox, script="nightly-backup")).ok
    [received] = sandbox.webhook_deliveries("ops")
    assert received["json"]["script"] == "nightly-backup"
    assert received["json"]["total_snapshots"] == 2  # the default style keeps its number


# -- issue 21, item 2: plain http to another host, when the channel allows it -----------------

_PROXIES = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def loopback_alias() -> str | None:
    """A host name `transport` does not take for this machine (not `localhost`, no address)
    that nonetheless resolves to loopback addresses only, such as the machine's own name in
    /etc/hosts; None when there is none. Through it a test sends "to another host" while no
    byte leaves the machine."""
    for name in (socket.gethostname(), "localhost.localdomain", "ip6-localhost"):
        if not name or transport.is_loopback(f"http://{name}/"):
            continue
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, None)}
        except OSError:
            continue
        if found and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found):
            return name
    return None


def aliased(url: str, name: str) -> str:
    """`url` with its host 127.0.0.1 (the sandbox) replaced by `name`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{name}:{parts.port}"))


@pytest.fixture
def alias(monkeypatch) -> str:
    name = loopback_alias()
    if name is None:
        pytest.skip("no host name here resolves to loopback only; no test may leave the machine")
    for variable in _PROXIES:  # a proxy would carry the request off the machine
        monkeypatch.delenv(variable, raising=False)
    return name


def test_plain_http_to_another_host_is_sent_only_when_the_channel_allows_it(sandbox, alias):
    url = aliased(sandbox.webhook_url("lan"), alias)
    assert transport.is_plain_http_elsewhere(url)
    refused = send(hook(sandbox, url=url))
    assert (refused.ok, refused.attempts) == (False, 0)
    assert refused.error.startswith(f"http://{alias}:") and "allow" not in refused.error
    assert sandbox.webhook_deliveries("lan") == []
    assert send(hook(sandbox, url=url, allow_plain_http=True)) == Delivery(
        "hook", "webhook", "web", True, 1, None
    )
    [received] = sandbox.webhook_deliveries("lan")
    assert received["json"]["server"] == "app-1"
