"""Plain http to another host (issue 21, item 2; docs/promises.md §5): a snapshots.py folder's
webhook is sent as that script sent it, with a warning shown without -v; a policy's webhook
needs `allow_plain_http: true`; Telegram and healthchecks stay https-only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from snapshot_policy.config import legacy
from snapshot_policy.config.policy import load_policy
from snapshot_policy.core.model import WebhookChannel

LAN = "http://n8n.lan:5678/webhook/x-secret-id?token=abc"
SHOWN = "http://n8n.lan:5678/…"


def folder(tmp_path: Path, url: str, where: str = "ini") -> Path:
    """A snapshots.py folder whose webhook posts to `url`, set in snapshots.config or in the
    server file."""
    webhook = f"[WEBHOOK]\nenabled = true\nurl = {url}\n" if where == "ini" else ""
    (tmp_path / "snapshots.config").write_text("[TELEGRAM]\nenabled = false\n\n" + webhook)
    server = {
        "provider": "hetzner",
        "id": "42",
        "name": "web",
        "api_token": "hz-token",
        "retain_last_snapshots": 3,
        **({"webhook": {"enabled": True, "url": url}} if where == "server" else {}),
    }
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "web.json").write_text(json.dumps({"hetzner_cloud_server": server}))
    return tmp_path


def load_folder(path: Path) -> legacy.LegacyLoad:
    return legacy.load_legacy(path / "snapshots.config", (), path)


@pytest.mark.parametrize("where", ["ini", "server"])
def test_a_legacy_http_webhook_to_the_lan_is_kept_with_a_loud_warning_hiding_its_path(
    tmp_path, where
):
    loaded = load_folder(folder(tmp_path, LAN, where))
    [problem] = loaded.problems
    assert (problem.warning, problem.loud, problem.path) == (
        True,
        True,
        "hetzner_cloud_server.webhook.url",
    )
    assert problem.file.endswith("web.json")
    assert str(problem).startswith(f"warning: {problem.file}: hetzner_cloud_server.webhook.url: ")
    assert SHOWN in problem.message and "sent as snapshots.py sent it" in problem.message
    assert "x-secret-id" not in str(problem) and "token" not in str(problem)
    [channel] = loaded.targets[0].notify
    assert isinstance(channel, WebhookChannel)
    assert (channel.url, channel.allow_plain_http) == (LAN, True)
    assert loaded.document["notifications"]["webhook"]["allow_plain_http"] is True


@pytest.mark.parametrize("url", ["https://n8n.example.com/webhook/x", "http://127.0.0.1:5678/x"])
def test_https_and_this_machine_need_no_permission_and_no_warning(tmp_path, url):
    loaded = load_folder(folder(tmp_path, url))
    assert loaded.problems == []
    [channel] = loaded.targets[0].notify
    assert channel.allow_plain_http is False
    assert "allow_plain_http" not in loaded.document["notifications"]["webhook"]


def test_a_legacy_webhook_no_http_client_would_send_stays_a_quiet_warning(tmp_path):
    loaded = load_folder(folder(tmp_path, "ftp://n8n.lan/x"))
    [problem] = loaded.problems
    assert (problem.warning, problem.loud) == (True, False)
    assert "the webhook will not be sent" in problem.message
    assert loaded.targets[0].notify == ()


def test_validate_prints_the_warning_without_v_and_exits_0(tmp_path, monkeypatch, capsys):
    """`plan` and `apply` go through the same loading (cli.app); see
    tests/e2e/test_legacy_layout.py for them against the sandbox."""
    monkeypatch.chdir(folder(tmp_path, LAN))
    assert main(["validate"]) == 0
    out, err = capsys.readouterr()
    assert all(len(line) <= 80 for line in err.splitlines())  # a warning goes on indented lines
    err = re.sub(r"\n {4}", " ", err)
    assert f"hetzner_cloud_server.webhook.url: {SHOWN} is plain http" in err
    assert "x-secret-id" not in out + err


POLICY = """\
version: 1
accounts:
  hz: {{provider: hetzner, token: literal-token}}
notifications:
  lan: {{type: webhook, url: "{url}"{extra}}}
targets:
  - {{name: web, account: hz, names: [web-1], retention: {{keep_daily: 7}}, notify: [lan]}}
"""


def policy(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(url=url, extra=extra))
    return path


def test_a_policy_webhook_over_http_to_another_host_is_an_error_naming_key_and_fix(tmp_path):
    path = policy(tmp_path, LAN)
    loaded = load_policy(path, {})
    [problem] = loaded.problems
    assert not problem.warning and loaded.targets == []
    assert str(problem).startswith(f"{path}:5: notifications.lan.url: http://n8n.lan:5678 is")
    assert str(problem).endswith("set allow_plain_http: true on this channel")
    assert "x-secret-id" not in str(problem)


def test_a_policy_webhook_with_allow_plain_http_is_sent_over_http(tmp_path):
    path = policy(tmp_path, LAN, ", allow_plain_http: true")
    loaded = load_policy(path, {})
    assert [str(p) for p in loaded.problems] == [
        f"warning: {path}:5: notifications.lan.url: {SHOWN} is plain http "
        "(allow_plain_http: true): the webhook's URL, headers and body cross the network in "
        "clear text"
    ]
    assert not loaded.problems[0].loud  # asked for by name: shown with -v
    [channel] = loaded.targets[0].notify
    assert (channel.url, channel.allow_plain_http) == (LAN, True)


def test_http_to_this_machine_needs_no_permission_and_false_changes_nothing(tmp_path):
    loaded = load_policy(policy(tmp_path, "http://127.0.0.1:9/x", ", allow_plain_http: false"), {})
    assert loaded.problems == []
    assert loaded.targets[0].notify[0].allow_plain_http is False


def test_allow_plain_http_opens_no_other_scheme(tmp_path):
    loaded = load_policy(policy(tmp_path, "ftp://n8n.lan/x", ", allow_plain_http: true"), {})
    assert [p.path for p in loaded.problems if not p.warning] == ["notifications.lan.url"]


def test_telegram_and_healthchecks_have_no_such_key(tmp_path):
    """Telegram's URL carries the bot token, a healthcheck URL is the secret: https only."""
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\naccounts:\n  hz: {provider: hetzner, token: t}\nnotifications:\n"
        "  tg: {type: telegram, bot_token: '1:a', chat_id: 1, allow_plain_http: true}\n"
        "targets:\n  - {name: web, account: hz, names: [w], retention: {keep_daily: 7}}\n"
        "settings:\n  telegram_api_url: http://tg.lan/bot\n  healthcheck_url: http://hc.lan/x\n"
    )
    said = [str(p) for p in load_policy(path, {}).problems]
    assert any("notifications.tg: unknown key 'allow_plain_http'" in line for line in said), said
