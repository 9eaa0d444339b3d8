"""POSTing JSON payloads to webhooks through httpx, optionally signed, with retries.

One `Webhooks` serves one run's notifications from one event loop: one `httpx.AsyncClient`
(a pool of `POOL` connections), at most `POOL` requests in flight, closed at the end. Its
caller posts to one URL one after another, in order; to different URLs concurrently.

The URL must be https, or plain http to this machine (`transport`), or plain http anywhere
for a channel that allows it (`allow_plain_http`); any other is refused before a connection
is opened. The body is serialised once (compact JSON, UTF-8; in the
snapshots.py style as that script wrote it, `messages.webhook_body`) and those exact bytes
are sent and signed.

Every delivery carries an event id, a random UUID that is the same on each retry of that
delivery and differs between deliveries, so a receiver can drop one it has already handled:

    X-Snapshot-Policy-Event-Id: <uuid4, e.g. 1b4e28ba-2fa1-4d3b-a3f5-ef19b8e1c3a2>

Signature (when the channel has a `secret`): two more headers on every attempt,

    X-Snapshot-Policy-Timestamp: <unix seconds when the attempt was sent>
    X-Snapshot-Policy-Signature: sha256=<hex HMAC-SHA256(secret,
                                         timestamp + "." + event_id + "." + body)>

The timestamp and the event id are signed with the body: a captured request cannot be
replayed later (the timestamp is too old) nor inside the window under another id (the
signature would not match), so a receiver that refuses old timestamps and remembers the ids
it saw for that long handles each event once. To verify: take the raw body bytes (before
any JSON parsing), recompute the HMAC over `timestamp + b"." + event_id + b"." + body`,
compare in constant time, refuse timestamps more than a few minutes off, then skip an id
already seen. With Flask:

    SEEN: dict[str, float] = {}  # event id -> when first seen; one process, kept 10 minutes

    @app.post("/snapshots")
    def snapshots():
        stamp = request.headers.get("X-Snapshot-Policy-Timestamp", "")
        event = request.headers.get("X-Snapshot-Policy-Event-Id", "")
        signed = stamp.encode() + b"." + event.encode() + b"." + request.get_data()
        expected = "sha256=" + hmac.new(SECRET, signed, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Snapshot-Policy-Signature", "")
        if (
            not hmac.compare_digest(expected, given)
            or not stamp.isdigit()
            or abs(time.time() - int(stamp)) > 300
        ):
            abort(401)
        for old in [e for e, at in SEEN.items() if at < time.time() - 600]:
            del SEEN[old]
        if event in SEEN:
            return "", 204  # a retry of an event already handled: acknowledge, do nothing
        SEEN[event] = time.time()
        ...  # handle request.get_json()
        return "", 204

(`SECRET` is the configured secret encoded as UTF-8; imports: hashlib, hmac, time, flask.)
Receivers written for the earlier recipe, which signed `timestamp + "." + body`, refuse
every request until they add the event id: they fail closed, never accept an unsigned id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import Mapping

import httpx

from snapshot_policy.core import transport
from snapshot_policy.core.model import Clock
from snapshot_policy.edges.notify.messages import CUT_OFF, DEFAULT_STYLE, Style, webhook_body
from snapshot_policy.pacing.backoff import Backoff, WaitRefused

POOL = 8  # connections, and requests in flight at once

SIGNATURE_HEADER = "X-Snapshot-Policy-Signature"
TIMESTAMP_HEADER = "X-Snapshot-Policy-Timestamp"
EVENT_ID_HEADER = "X-Snapshot-Policy-Event-Id"


class Webhooks:
    """One run's webhook client, an async context manager; the connection pool opens with the
    first request made."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._in_flight = asyncio.Semaphore(POOL)

    async def __aenter__(self) -> Webhooks:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def post(
        self,
        url: str,
        payload: object,
        *,
        secret: str | None,
        headers: Mapping[str, str],
        timeout: float,
        backoff: Backoff,
        clock: Clock,
        deadline: float | None = None,
        style: Style = DEFAULT_STYLE,
        allow_plain_http: bool = False,
    ) -> tuple[int, str | None]:
        """POST `payload` as JSON to `url`; return (requests made, None) or (requests made, last
        error).

        A `url` that `transport` refuses is not contacted: (0, why). Every attempt of this call
        carries the same new event id. Retried through `backoff` on connection errors, timeouts,
        429 and 5xx, where a 429's `Retry-After` in seconds is the advised wait (refused, ending
        the delivery, when the policy finds it too long). Other answers of 300 and above are
        final. `timeout` bounds each attempt whole, connect to last byte (httpx's timeouts would
        bound each read, which a receiver answering a byte at a time never exceeds); `clock`
        dates each signed attempt. At `deadline` (the event loop's time) the delivery is cut
        off, whatever it is doing: (requests made, CUT_OFF).
        """
        refused = transport.url_problem(url, transport.WEBHOOK, allow_plain_http)
        if refused is not None:
            return 0, refused
        body = webhook_body(payload, style)
        event_id = str(uuid.uuid4())
        requests = 0
        if self._client is None:
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=POOL))
        client = self._client

        async def attempt() -> None:
            nonlocal requests
            requests += 1
            async with self._in_flight:
                try:
                    async with asyncio.timeout(
                        timeout
                    ):  # httpx's own would bound each read, not the attempt
                        response = await client.post(
                            url,
                            content=body,
                            headers=_headers(headers, body, event_id, secret, clock),
                            timeout=None,
                        )
                except TimeoutError:
                    raise _TooSlow(timeout) from None
            if not response.is_success:
                raise _Unsuccessful(response)

        try:
            async with asyncio.timeout_at(deadline):
                await backoff.run_async(attempt, retryable=_retryable, advised=_advised_wait)
        except TimeoutError:
            return requests, CUT_OFF
        except WaitRefused as too_long:
            return requests, f"{_describe(too_long.error)}; not waiting {too_long.wait:g} s"
        except (
            httpx.TransportError,
            _Unsuccessful,
            _TooSlow,
        ) as error:  # TransportError: connection refused or dropped
            return requests, _describe(error)
        return requests, None


class _TooSlow(Exception):
    """An attempt that had no complete answer within the channel's timeout."""

    def __init__(self, timeout: float):
        super().__init__(f"no complete answer within {timeout:g}s")


class _Unsuccessful(Exception):
    """An answer outside 2xx; a 429's numeric `Retry-After` is kept as `wait`."""

    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
        self.status = response.status_code
        self.wait = _retry_after(response) if self.status == 429 else None


def _retryable(error: Exception) -> bool:
    if isinstance(error, _Unsuccessful):
        return error.status == 429 or error.status >= 500
    return isinstance(error, (httpx.TransportError, _TooSlow))


def _advised_wait(error: Exception) -> float | None:
    return error.wait if isinstance(error, _Unsuccessful) else None


def _describe(error: BaseException) -> str:
    if isinstance(error, (_Unsuccessful, _TooSlow)):
        return str(error)
    detail = str(error)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def signature(secret: str, timestamp: str, event_id: str, body: bytes) -> str:
    """The value of the signature header for `body` of event `event_id` sent at `timestamp` (unix
    seconds)."""
    mac = hmac.new(
        secret.encode(), timestamp.encode() + b"." + event_id.encode() + b"." + body, hashlib.sha256
    )
    return "sha256=" + mac.hexdigest()


def _headers(
    extra: Mapping[str, str], body: bytes, event_id: str, secret: str | None, clock: Clock
) -> httpx.Headers:
    """The channel's own headers, then ours, which win: the body is JSON whatever they say,
    and the event id and signature are ours to give."""
    headers = httpx.Headers(dict(extra))
    headers["Content-Type"] = "application/json"
    headers[EVENT_ID_HEADER] = event_id
    if secret:
        timestamp = str(int(clock().timestamp()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = signature(secret, timestamp, event_id, body)
    return headers


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a numeric Retry-After; None (use the backoff) when absent or an HTTP date."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None
