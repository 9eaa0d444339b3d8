"""POSTing one JSON payload to a webhook through httpx, optionally signed, with retries.

The body is serialised once (compact JSON, UTF-8) and those exact bytes are sent and signed.

Signature (when the channel has a `secret`): two headers on every attempt,

    X-Snapshot-Policy-Timestamp: <unix seconds when the attempt was sent>
    X-Snapshot-Policy-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

The timestamp is signed with the body so a captured request cannot be replayed later. To
verify: take the raw body bytes (before any JSON parsing), recompute the HMAC over
`timestamp + b"." + body`, compare in constant time, and refuse timestamps older than a few
minutes. With Flask:

    @app.post("/snapshots")
    def snapshots():
        stamp = request.headers.get("X-Snapshot-Policy-Timestamp", "")
        signed = stamp.encode() + b"." + request.get_data()
        expected = "sha256=" + hmac.new(SECRET, signed, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Snapshot-Policy-Signature", "")
        if not hmac.compare_digest(expected, given) or abs(time.time() - int(stamp)) > 300:
            abort(401)
        return "", 204

(`SECRET` is the configured secret encoded as UTF-8; imports: hashlib, hmac, time, flask.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping

import httpx

from snapshot_policy.model import Clock

SIGNATURE_HEADER = "X-Snapshot-Policy-Signature"
TIMESTAMP_HEADER = "X-Snapshot-Policy-Timestamp"
# A Retry-After longer than this is not worth holding up a snapshot run for.
MAX_SERVER_WAIT = 60.0


def post(
    url: str,
    payload: object,
    *,
    secret: str | None,
    headers: Mapping[str, str],
    timeout: float,
    retries: int,
    base_delay: float,
    clock: Clock,
    sleep: Callable[[float], None],
) -> tuple[int, str | None]:
    """POST `payload` as JSON to `url`; return (requests made, None) or (requests made, last error).

    Up to `retries` retries after the first attempt, on connection errors, timeouts, 429 and
    5xx, waiting `base_delay * 2**(n-1)` before retry n, or a 429's `Retry-After` in seconds
    when given (giving up instead if that is over MAX_SERVER_WAIT). Other answers of 300 and
    above are final. `timeout` applies to each request; `clock` dates each signed attempt.
    """
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    requests = retry = 0
    with httpx.Client(timeout=timeout) as client:
        while True:
            requests += 1
            wait = None
            try:
                response = client.post(url, content=body, headers=_headers(headers, body, secret, clock))
            except httpx.TransportError as error:  # connection refused or dropped, timeouts
                failure = f"{type(error).__name__}: {error}"
            else:
                if response.is_success:
                    return requests, None
                failure = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
                if response.status_code == 429:
                    wait = _retry_after(response)
                elif response.status_code < 500:
                    return requests, failure
            if retry >= retries:
                return requests, failure
            retry += 1
            if wait is None:
                wait = base_delay * 2 ** (retry - 1)
            elif wait > MAX_SERVER_WAIT:
                return requests, f"{failure}; not waiting {wait:g} s"
            sleep(wait)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of the signature header for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _headers(extra: Mapping[str, str], body: bytes, secret: str | None, clock: Clock) -> httpx.Headers:
    """The channel's own headers, then ours, which win: the body is JSON whatever they say."""
    headers = httpx.Headers(dict(extra))
    headers["Content-Type"] = "application/json"
    if secret:
        timestamp = str(int(clock().timestamp()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
    return headers


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a numeric Retry-After; None (use the backoff) when absent or an HTTP date."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None
