"""The one rule for every outbound URL that carries a secret (docs/promises.md §5, invariant 11).

Cloud APIs carry the API token, Telegram's base URL is followed by the bot token, a webhook
sends its URL (Slack- and Discord-style URLs are credentials) and custom headers, and a
healthcheck URL is itself the secret that lets anyone report a run. Each goes over https;
plain http is allowed only to this machine, where nothing crosses a network (the sandbox,
a local proxy). Every sender and every config check asks `url_problem` or `check_url`.
One exception, chosen per webhook channel: `allow_plain_http` lets its URL be plain http to
another host (an n8n on the LAN, as snapshots.py posted to); a snapshots.py folder's webhooks
have it, with a warning (issue 21).

Loopback means exactly `localhost`, an address in 127.0.0.0/8, or `::1`, written out.
Shorthands such as `127.1` or `2130706433` are refused rather than trusted, and so is any
URL holding whitespace, a control character or a backslash: parsers (ours, httpx, requests)
read those differently, and a URL two parsers read differently must not decide where a
token goes.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

# What each kind of URL would give away over plain http; finishes "… would cross the network".
API_TOKEN = "the API token"
BOT_TOKEN = "the bot token"
WEBHOOK = "the webhook's URL and headers"
HEALTHCHECK = "the healthcheck URL, which lets anyone report a run,"

ALLOWED = "use https, or http only to this machine (127.0.0.1, ::1, localhost)"
_AMBIGUOUS = re.compile(r"[\s\x00-\x1f\x7f\\]")


class InsecureURLError(ValueError):
    """A URL that would send a secret over the network in clear text."""


def check_url(url: str, what: str, allow_plain_http: bool = False) -> None:
    """Return if `url` may carry `what` (one of the constants above). Raise InsecureURLError,
    whose message names the URL's scheme and host only, if it is not https and not plain
    http to this machine (nor plain http at all, with `allow_plain_http`)."""
    problem = url_problem(url, what, allow_plain_http)
    if problem is not None:
        raise InsecureURLError(problem)


def url_problem(url: str, what: str, allow_plain_http: bool = False) -> str | None:
    """Return why `url` may not carry `what`, as a sentence for a person; None when it may.
    `allow_plain_http` accepts plain http to any host (a webhook channel's choice).

    The sentence shows `scheme://host[:port]` and never the path, query or user info, where
    webhook and healthcheck URLs keep their secrets.
    """
    if _AMBIGUOUS.search(url):
        return (
            "the URL holds whitespace, a control character or a backslash; "
            "percent-encode it (%20, %5C)"
        )
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        return f"the URL cannot be read as scheme://host/path; {ALLOWED}"
    if not scheme or not host:
        return f"the URL names no scheme or no host; {ALLOWED}"
    if scheme == "https" or (scheme == "http" and (allow_plain_http or is_loopback(url))):
        return None
    where = _origin(scheme, host, port)
    return f"{where} is not https: {what} would cross the network in clear text; {ALLOWED}"


def is_plain_http_elsewhere(url: str) -> bool:
    """True when `url` is a readable plain http URL to a host other than this machine: the one
    kind `allow_plain_http` lets through."""
    if _AMBIGUOUS.search(url) or is_loopback(url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme.lower() == "http" and bool(parts.hostname)


def shown(url: str) -> str:
    """`url` as it may be shown: `scheme://host[:port]`, never the path, query or user info,
    where webhook and healthcheck URLs keep their secrets."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(an unreadable URL)"
    return _origin(parts.scheme.lower(), parts.hostname or "", port)


def _origin(scheme: str, host: str, port: int | None) -> str:
    return f"{scheme}://{_bracketed(host)}{f':{port}' if port else ''}"


def is_loopback(url: str) -> bool:
    """True when `url`'s host is this machine: `localhost`, 127.0.0.0/8 or ::1, written out."""
    if _AMBIGUOUS.search(url):
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
