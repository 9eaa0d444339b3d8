"""An apprise channel in the policy (issue 21, item 12): its URLs are secrets, read through env:
and file:, checked by apprise when the policy loads, and masked with what apprise hides of them;
a wrong one is an error naming the file, the key and the fix, never showing the URL."""

from __future__ import annotations

import inspect
import logging
import re

import pytest

from snapshot_policy import config
from snapshot_policy.config import apprise_urls
from snapshot_policy.config.policy import load_policy
from snapshot_policy.core import apprise_loader
from snapshot_policy.core.model import AppriseChannel
from snapshot_policy.core.redaction import redact
from snapshot_policy.edges.notify import apprise_send

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops"
HEAD = "version: 1\naccounts:\n  do: {provider: digitalocean, token: literal-token}\n"


def policy(tmp_path, channel: str, env: dict | None = None):
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(
        HEAD
        + f"notifications:\n  ops: {channel}\n"
        + "targets:\n  - {name: web, account: do, ids: [1], retention: {keep_last: 2}, "
        "notify: [ops]}\n"
    )
    return path, load_policy(path, env or {})


def errors(loaded):
    return [(p.path, p.message) for p in loaded.problems if not p.warning]


def test_urls_from_env_and_file_become_the_channel_with_the_telegram_keys(tmp_path):
    (tmp_path / "slack.url").write_text(SLACK + "\n")
    _, loaded = policy(
        tmp_path,
        "{type: apprise, urls: [env:NTFY_URL, 'file:slack.url'], summary: true, retries: 1, "
        "message_failure: 'x {server_name}'}",
        {"NTFY_URL": "ntfys://ntfy.sh/my-topic"},
    )
    assert errors(loaded) == []
    [channel] = loaded.targets[0].notify
    assert isinstance(channel, AppriseChannel)
    assert channel.urls == ("ntfys://ntfy.sh/my-topic", SLACK)
    assert (channel.summary, channel.retries, channel.timeout) == (True, 1, 10)
    assert channel.message_failure == "x {server_name}"
    assert SLACK not in repr(channel)


def test_the_urls_and_what_apprise_hides_of_them_are_masked(tmp_path):
    _, loaded = policy(tmp_path, "{type: apprise, urls: [env:URL]}", {"URL": SLACK})
    loaded_config = config.load(tmp_path / "snapshot-policy.yaml", env={"URL": SLACK})
    for secret in (SLACK, "TIiajkdnlazkcOXrIdevi7FQ", "A1BRTD4JD", "T1JJ3T3L2"):
        assert secret in loaded_config.secrets
    # apprise may show the token alone, the way it rebuilds a URL: neither gets through.
    shown = "posting to slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/%23ops failed"
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in redact(shown, loaded_config.secrets)
    assert "A1BRTD4JD" not in redact(shown, loaded_config.secrets)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("just-a-word-Zq7xK2mP9vR4", "is not an apprise URL (scheme://…"),
        ("nosuch://host/Zq7xK2mP9vR4", "nosuch:// is not a service apprise knows; write"),
        ("slack://Zq7xK2mP9vR4", "apprise cannot read this slack:// URL (not shown here"),
        ("json://192.0.2.7/Zq7xK2mP9vR4", "goes over plain http to another host"),
    ],
)
def test_a_url_apprise_cannot_use_is_an_error_naming_the_key_and_the_fix(tmp_path, url, expected):
    path, loaded = policy(tmp_path, "{type: apprise, urls: [env:URL]}", {"URL": url})
    assert loaded.targets == []
    [problem] = [p for p in loaded.problems if not p.warning]
    assert (problem.file, problem.path) == (str(path), "notifications.ops.urls[0]")
    assert problem.line == 5  # the line of `ops:`
    assert problem.message.startswith(expected) or expected in problem.message
    assert "Zq7xK2mP9vR4" not in problem.message and url not in problem.message
    assert "https://" in problem.message or "allow_plain_http: true" in problem.message


def test_plain_http_elsewhere_is_sent_when_the_channel_allows_it_and_locally_always(tmp_path):
    env = {"URL": "json://192.0.2.7/hook", "LOCAL": "json://127.0.0.1:8080/hook"}
    _, allowed = policy(
        tmp_path, "{type: apprise, allow_plain_http: true, urls: [env:URL, env:LOCAL]}", env
    )
    assert errors(allowed) == []
    _, local = policy(tmp_path, "{type: apprise, urls: [env:LOCAL]}", env)
    assert errors(local) == []


@pytest.mark.parametrize(
    ("channel", "path", "message"),
    [
        ("{type: apprise, urls: [env:UNSET]}", "notifications.ops.urls[0]", "UNSET is not set"),
        ("{type: apprise, urls: ['file:nowhere.url']}", "notifications.ops.urls[0]", "cannot read"),
        ("{type: apprise, urls: []}", "notifications.ops.urls", "at least one"),
        ("{type: apprise}", "notifications.ops", "missing required key 'urls'"),
        ("{type: apprise, urls: ['']}", "notifications.ops.urls[0]", ""),
        ("{type: apprise, urls: [x], bot_token: y}", "notifications.ops", "bot_token"),
    ],
)
def test_missing_or_empty_urls_are_errors_naming_the_key(tmp_path, channel, path, message):
    _, loaded = policy(tmp_path, channel)
    found = errors(loaded)
    assert found and all(message in m for _, m in found if _ == path)
    assert path in [p for p, _ in found] or any(p.startswith(path) for p, _ in found)


def test_simulate_reads_no_url(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        HEAD + "notifications:\n  ops: {type: apprise, urls: [env:UNSET]}\n"
        "targets:\n  - {name: web, account: do, ids: [1], retention: {keep_last: 2}, "
        "notify: [ops]}\n"
    )
    loaded = load_policy(path, {}, read_secrets=False)
    assert errors(loaded) == []


def test_parts_to_mask_are_what_privacy_mode_hides():
    assert apprise_urls.parts_to_mask(
        "mailtos://user:secretpw@gmail.com/me%40example.com?mode=starttls",
        "mailtos://user:****@gmail.com/me%40example.com?mode=starttls",
    ) == ("secretpw",)
    assert apprise_urls.parts_to_mask(
        "tgram://123456789%3Aabcdefg_hijklmnop/-1001234/?image=no",
        "tgram://1...p/-1001234/?image=no",
    ) == ("123456789:abcdefg_hijklmnop",)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("ntfys://ntfy.sh/backups-7f3a9c2e", "backups-7f3a9c2e"),  # a random topic
        ("ntfys://backups-7f3a9c2e", "backups-7f3a9c2e"),  # ntfy.sh's topic written as the host
        ("ntfy://127.0.0.1:8080/backups-of-acme-corporation", "backups-of-acme-corporation"),
        ("mailtos://user:secretpw@gmail.com/backups-of-acme@example.com", "secretpw"),
        (
            "mailtos://user:secretpw@gmail.com/backups-of-acme@example.com",
            "backups-of-acme@example.com",
        ),
        ("ntfys://ntfy.sh/topic?token=tk_mytokenvalue", "tk_mytokenvalue"),
        ("jsons://example.com/hook?+X-Api-Key=word-like-key", "word-like-key"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "T1JJ3T3L2"),
    ],
)
def test_every_piece_that_may_hold_a_secret_is_masked(tmp_path, url, secret):
    """apprise's privacy mode shows an ntfy topic; one that looks like a token is masked."""
    loaded = config.load(
        policy(tmp_path, "{type: apprise, urls: [env:URL]}", {"URL": url})[0], env={"URL": url}
    )
    assert secret in loaded.secrets
    said = f"Failed to send ntfy notification to topic '{secret}': forbidden, error=403."
    assert secret not in redact(said, loaded.secrets)


def test_the_hosts_the_options_and_words_of_a_url_stay_readable():
    """A path of words (`backups`, `snapshot-policy`) masked wherever it appears would hide
    server names, and names in the journal that must match the cloud's again; the tool never
    passes on apprise's words, which quote a topic (test_apprise_channel)."""
    checked = apprise_urls.check("ntfys://ntfy.sh/backups-of-acme?priority=default&format=text")
    assert checked.parts == ()
    checked = apprise_urls.check("jsons://hooks.example.com/snapshot-policy/backups")
    assert checked.parts == ()
    checked = apprise_urls.check("ntfys://ntfy.sh/backups-7f3a9c2e")
    assert checked.parts == ("backups-7f3a9c2e",)


def test_a_kodi_url_loads_and_its_password_is_masked(tmp_path):
    """Kodi's plugin keeps an int in `protocol`: that once ended every command in a traceback."""
    for url in ("kodi://user:pw@example.com", "xbmc://user:s3cretPassw0rd@example.com"):
        path, loaded = policy(tmp_path, "{type: apprise, urls: [env:URL]}", {"URL": url})
        [problem] = errors(loaded)
        assert problem[0] == "notifications.ops.urls[0]"
        assert "goes over plain http to another host" in problem[1]  # Kodi's JSON-RPC: http
        assert url not in problem[1] and "s3cretPassw0rd" not in problem[1]
    checked = apprise_urls.check("kodis://user:s3cretPassw0rd@example.com")
    assert (checked.problem, checked.plain_elsewhere) == (None, False)
    assert "s3cretPassw0rd" in checked.parts
    _, loaded = policy(
        tmp_path,
        "{type: apprise, allow_plain_http: true, urls: [env:URL]}",
        {"URL": "kodi://user:pw@example.com"},
    )
    assert errors(loaded) == []


def test_apprise_is_loaded_and_its_logger_held_in_one_place():
    """config (reading URLs) and edges (sending) share core.apprise_loader, the one layer both
    stand on: one loader, one way of keeping apprise's logger from the console."""
    for module in (apprise_urls, apprise_send):
        source = inspect.getsource(module)
        assert not re.search(r"^\s*(import|from) apprise\b", source, re.MULTILINE)
        for duplicate in ("catch_warnings", "logger.handlers", "def _load"):
            assert duplicate not in source, (module.__name__, duplicate)
    apprise, plugins = apprise_loader.load()
    assert apprise_loader.load() == (apprise, plugins) and "ntfys" in plugins
    logger = logging.getLogger("apprise")
    before = (logger.propagate, logger.level, logger.handlers[:], logger.disabled)
    with apprise_loader.quiet():
        assert (logger.handlers, logger.propagate, logger.disabled) == ([], False, True)
    assert (logger.propagate, logger.level, logger.handlers, logger.disabled) == before
