"""The one rule for outbound URLs that carry a secret (docs/promises.md §5, invariant 11): https, or
http to this machine."""

from __future__ import annotations

import pytest

from snapshot_policy.core import transport
from snapshot_policy.core.transport import InsecureURLError, check_url, is_loopback, url_problem

ALLOWED = "use https, or http only to this machine (127.0.0.1, ::1, localhost)"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.telegram.org/bot",
        "https://hooks.slack.com/services/T000/B000/XXXX",
        "HTTPS://API.HETZNER.CLOUD/v1",
        "https://10.0.0.5:8443/hook",  # https to anywhere: the channel is encrypted
        "http://127.0.0.1:8765/bot",  # the sandbox
        "http://127.8.9.10/x",
        "http://[::1]:8080/hooks/ops",
        "http://localhost/v1",
        "http://LocalHost:9/",
        "http://user:password@127.0.0.1/x",
    ],
)
def test_https_anywhere_and_http_to_this_machine_pass(url):
    assert url_problem(url, transport.WEBHOOK) is None
    check_url(url, transport.WEBHOOK)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("http://example.invalid", "http://example.invalid"),
        ("http://api.telegram.org/bot", "http://api.telegram.org"),
        ("http://10.0.0.5:8080/hooks/secret-path?token=abc", "http://10.0.0.5:8080"),
        ("http://user:password@hooks.example.com/x", "http://hooks.example.com"),
        ("http://[2001:db8::1]/x", "http://[2001:db8::1]"),
        ("ftp://files.example.com/x", "ftp://files.example.com"),
        # Shorthands and tricks that some parser might read as this machine are refused.
        ("http://127.1/x", "http://127.1"),
        ("http://2130706433/x", "http://2130706433"),
        ("http://localhost.example.com/x", "http://localhost.example.com"),
        ("http://127.0.0.1.nip.io/x", "http://127.0.0.1.nip.io"),
        ("http://127.0.0.1@evil.example/x", "http://evil.example"),
        ("http://evil.example#@127.0.0.1/x", "http://evil.example"),
    ],
)
def test_plain_http_off_this_machine_is_refused_naming_scheme_and_host_only(url, shown):
    expected = (
        f"{shown} is not https: the bot token would cross the network in clear text; {ALLOWED}"
    )
    assert url_problem(url, transport.BOT_TOKEN) == expected
    with pytest.raises(InsecureURLError) as raised:
        check_url(url, transport.BOT_TOKEN)
    assert str(raised.value) == expected
    assert isinstance(raised.value, ValueError)  # callers that catch ValueError keep working


@pytest.mark.parametrize("url", ["", "api.telegram.org/bot", "https:///x", "/relative/path"])
def test_a_url_without_scheme_or_host_is_refused(url):
    assert (
        url_problem(url, transport.HEALTHCHECK) == f"the URL names no scheme or no host; {ALLOWED}"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1\\@evil.example/x",
        "http://\t127.0.0.1/x",
        "http://127.0.0.1 /x",
        "http://127.0.0.1\x00.evil.example/",
        "https://hooks.example.com/a b",
    ],
)
def test_a_url_that_parsers_may_read_differently_is_refused(url):
    """urllib drops tabs and newlines that other clients keep; backslashes split hosts
    differently."""
    assert url_problem(url, transport.WEBHOOK) == (
        "the URL holds whitespace, a control character or a backslash; percent-encode it (%20, %5C)"
    )
    assert not is_loopback(url)


@pytest.mark.parametrize("url", ["http://[::1/x", "http://127.0.0.1:port/x"])
def test_a_url_that_cannot_be_read_is_refused(url):
    assert (
        url_problem(url, transport.API_TOKEN)
        == f"the URL cannot be read as scheme://host/path; {ALLOWED}"
    )


def test_each_kind_of_secret_is_named_in_the_refusal():
    said = {
        what: url_problem("http://x.example/", what)
        for what in (
            transport.API_TOKEN,
            transport.BOT_TOKEN,
            transport.WEBHOOK,
            transport.HEALTHCHECK,
        )
    }
    assert said[transport.API_TOKEN].startswith(
        "http://x.example is not https: the API token would cross"
    )
    assert said[transport.WEBHOOK].startswith(
        "http://x.example is not https: the webhook's URL and headers would cross"
    )
    assert said[transport.HEALTHCHECK].startswith(
        "http://x.example is not https: the healthcheck URL, which lets anyone report a run, "
        "would cross"
    )


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://127.0.0.1/", True),
        ("http://[::1]/", True),
        ("http://localhost:1/", True),
        ("http://example.com/", False),
        ("http://[::1/", False),
        ("", False),
    ],
)
def test_is_loopback(url, expected):
    assert is_loopback(url) is expected


# -- issue 21, item 2: a webhook channel may allow plain http to another host ---------------


@pytest.mark.parametrize(
    "url",
    [
        "http://n8n.lan:5678/webhook/x",
        "HTTP://10.0.0.5/hooks/secret-path?token=abc",
        "http://[2001:db8::1]:8080/x",
        "https://hooks.example.com/a",
        "http://127.0.0.1:9/x",
    ],
)
def test_allow_plain_http_lets_http_to_any_host_through(url):
    assert url_problem(url, transport.WEBHOOK, allow_plain_http=True) is None
    check_url(url, transport.WEBHOOK, allow_plain_http=True)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.example.com/x",
        "http://n8n.lan/a b",
        "http://127.0.0.1\\@evil.example/x",
        "http://n8n.lan:port/x",
        "n8n.lan/webhook",
    ],
)
def test_allow_plain_http_allows_no_other_scheme_nor_an_ambiguous_url(url):
    assert url_problem(url, transport.WEBHOOK, allow_plain_http=True) is not None
    assert not transport.is_plain_http_elsewhere(url)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://n8n.lan:5678/webhook/x", True),
        ("Http://10.0.0.5/x", True),
        ("http://127.0.0.1:9/x", False),  # this machine: needs no permission
        ("http://localhost/x", False),
        ("https://n8n.lan/x", False),
        ("http://[::1/", False),
        ("http:///x", False),
    ],
)
def test_is_plain_http_elsewhere(url, expected):
    assert transport.is_plain_http_elsewhere(url) is expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://n8n.lan:5678/webhook/secret-id?token=abc", "http://n8n.lan:5678"),
        ("http://user:password@N8N.lan/x", "http://n8n.lan"),
        ("HTTP://[2001:db8::1]:8080/x#frag", "http://[2001:db8::1]:8080"),
        ("http://[::1/x", "(an unreadable URL)"),
    ],
)
def test_shown_keeps_only_scheme_host_and_port(url, expected):
    """A webhook's path, query and user info can be its secret: never shown."""
    assert transport.shown(url) == expected
