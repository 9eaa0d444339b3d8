"""A snapshots.py folder without message_*/payload_* keys sends snapshots.py's built-in texts,
byte for byte, through the sandbox's Telegram and webhook receivers (issue 21, items 3 and 6;
docs/promises.md §7).

The expected texts are written out here as snapshots.py's code produced them: its
`load_config()` defaults filled by plain text replacement, `{script}` as `snapshots.py`, every
body value a string, `snapshot_name` `none` after a failure, `{snapshot_info}` `N snapshots
exist` even for one, and the body as its HTTP library serialised it (`", "` and `": "`).
"""

from __future__ import annotations

import json
import os
import re

import pytest

from snapshot_policy import config
from snapshot_policy.cli import main
from snapshot_policy.config.migrate import migrate
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import BOT_TOKEN, DO_TOKEN, HZ_TOKEN, cloud
from tests.e2e.policies import WEB, policy_yaml

CHAT = "-1001234567890"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"  # its timestamp: local time, %Y-%m-%d %H:%M:%S


@pytest.fixture
def sandbox(monkeypatch, clock):
    """The usual cloud plus `web_main-1` (id 3164446), the issue's server, which has no
    snapshots yet: after one run it has one, which snapshots.py counted as "1 snapshots"."""
    state = cloud(clock.now)
    state["servers"].append({"account": "do", "id": 3164446, "name": "web_main-1"})
    with Sandbox(state, action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


@pytest.fixture
def folder(tmp_path, sandbox):
    """snapshots.config with credentials only, and two server files that enable both channels
    (snapshots.py sent nothing for a server whose file did not enable a channel)."""
    (tmp_path / "snapshots.config").write_text(
        "[DIRECTORIES]\nconfigs_dir = configs\nlogs_dir = logs\n\n"
        "[TIMING]\ndelay_between_servers = 0\n\n"
        f"[TELEGRAM]\nenabled = true\nbot_token = {BOT_TOKEN}\nchat_id = {CHAT}\n\n"
        f"[WEBHOOK]\nenabled = true\nurl = {sandbox.webhook_url('n8n')}\n"
    )
    configs = tmp_path / "configs"
    configs.mkdir()
    servers = {
        "web.json": (
            "digitalocean_droplet",
            {"provider": "digitalocean", "id": "3164446", "name": "web_main-1"},
            DO_TOKEN,
            0,
        ),
        "db.json": (
            "hetzner_cloud_server",
            {"provider": "hetzner", "id": 4711, "name": "db-1"},
            HZ_TOKEN,
            2,
        ),
    }
    for file, (wrapper, server, token, retain) in servers.items():
        body = {
            **server,
            "api_token": token,
            "retain_last_snapshots": retain,
            "telegram": {
                "enabled": True,
                "bot_token": "your_telegram_bot_token_here",
                "chat_id": "your_telegram_chat_id_here",
            },
            "webhook": {"enabled": True, "url": "https://your-webhook-url.com/notify"},
        }
        (configs / file).write_text(json.dumps({wrapper: body}, indent=2))
    return tmp_path


def body_pattern(**values: str) -> str:
    """A regex for snapshots.py's default body with `values` (every one a string), its
    `timestamp` any local time of its format."""
    keys = (
        "script",
        "provider",
        "server",
        "server_id",
        "status",
        "hostname",
        "timestamp",
        "snapshot_name",
        "total_snapshots",
        "snapshot_info",
    )
    items = [
        f'"{key}": ' + (f'"{STAMP}"' if key == "timestamp" else re.escape(f'"{values[key]}"'))
        for key in keys
    ]
    return re.escape("{") + re.escape(", ").join(items) + re.escape("}")


def test_a_legacy_folder_sends_the_old_scripts_default_texts_byte_for_byte(
    folder, sandbox, monkeypatch, capsys, clock
):
    sandbox.inject("fail_action", service="hetzner")
    monkeypatch.chdir(folder)
    assert main(["apply"], clock=clock) == 2  # web_main-1 succeeded, db-1 failed
    capsys.readouterr()

    messages = {m["text"].split("`")[1]: m for m in sandbox.telegram_messages()}
    assert set(messages) == {"web_main-1", "db-1"}
    assert all(
        m["delivered"] and m["parse_mode"] == "Markdown" and str(m["chat_id"]) == CHAT
        for m in messages.values()
    )
    # The underscore in a code span is sent as typed, as snapshots.py sent it.
    assert re.fullmatch(
        r"\*Snapshot Success\*\nServer: `web_main-1`\n"
        r"Snapshot: `web_main-1-\d{14}`\nTotal: `1` snapshots",
        messages["web_main-1"]["text"],
    ), messages["web_main-1"]["text"]
    assert messages["db-1"]["text"] == (
        "*Snapshot Failed*\nServer: `db-1`\nError occurred during snapshot creation"
    )

    bodies = {d["json"]["server"]: d for d in sandbox.webhook_deliveries("n8n")}
    assert set(bodies) == {"web_main-1", "db-1"}
    web_name = re.search(r"web_main-1-\d{14}", messages["web_main-1"]["text"]).group()
    host = os.uname().nodename
    assert re.fullmatch(
        body_pattern(
            script="snapshots.py",
            provider="digitalocean",
            server="web_main-1",
            server_id="3164446",
            status="SUCCESS",
            hostname=host,
            snapshot_name=web_name,
            total_snapshots="1",
            snapshot_info="1 snapshots exist",
        ),
        bodies["web_main-1"]["body"],
    ), bodies["web_main-1"]["body"]
    # db-1 keeps its five adopted snapshots: a failed snapshot deletes nothing.
    assert re.fullmatch(
        body_pattern(
            script="snapshots.py",
            provider="hetzner",
            server="db-1",
            server_id="4711",
            status="FAILURE",
            hostname=host,
            snapshot_name="none",
            total_snapshots="5",
            snapshot_info="5 snapshots exist",
        ),
        bodies["db-1"]["body"],
    ), bodies["db-1"]["body"]
    assert all(d["headers"].get("content-type") == "application/json" for d in bodies.values())


def test_a_legacy_folders_own_templates_render_script_as_snapshots_py(
    folder, sandbox, monkeypatch, capsys, clock
):
    """`{script}` stays snapshots.py in a folder's own templates too."""
    (folder / "snapshots.config").write_text(
        f"[TELEGRAM]\nbot_token = {BOT_TOKEN}\nchat_id = {CHAT}\n"
        "message_success = *{script}*: `{server_name}`\n\n"
        "[WEBHOOK]\nenabled = true\n"
        'payload_success = {"by": "{script}", "n": "{total_snapshots}"}\n'
    )
    web = folder / "configs" / "web.json"
    web.write_text(
        web.read_text().replace("https://your-webhook-url.com/notify", sandbox.webhook_url("own"))
    )
    (folder / "configs" / "db.json").unlink()
    monkeypatch.chdir(folder)
    assert main(["apply"], clock=clock) == 0
    capsys.readouterr()
    assert [m["text"] for m in sandbox.telegram_messages()] == ["*snapshots.py*: `web_main-1`"]
    assert [d["body"] for d in sandbox.webhook_deliveries("own")] == [
        '{"by": "snapshots.py", "n": "1"}'
    ]
    assert sandbox.webhook_deliveries("n8n") == []


def test_migrate_keeps_the_old_texts(folder, sandbox):
    """The policy migrate writes names the style, so it sends the same texts."""
    legacy = config.load(cwd=folder)
    migration = migrate(legacy.document, legacy.base)
    assert migration.text.count("style: snapshots.py") == 2
    policy = folder / "snapshot-policy.yaml"
    policy.write_text(migration.text)
    env = {
        "DIGITALOCEAN_TOKEN_1": DO_TOKEN,
        "HCLOUD_TOKEN_1": HZ_TOKEN,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        **sandbox.env(),
    }
    migrated = config.load(policy=policy, env=env)
    assert migrated.errors == ()
    styles = {(c.name, c.style, c.script) for t in migrated.targets for c in t.notify}
    assert styles == {("telegram", "snapshots.py", None), ("webhook", "snapshots.py", None)}


def test_a_policy_channel_takes_the_style_and_script_and_refuses_a_misspelt_style(
    tmp_path, sandbox, tokens, monkeypatch, capsys, clock
):
    """A policy may ask for the old wording, or name its sender; a style that does not exist
    is an error naming the file, the key and the choices."""
    notifications = {
        "hook": {
            "type": "webhook",
            "url": sandbox.webhook_url("policy"),
            "style": "snapshots.py",
            "script": "nightly.sh",
        }
    }
    web = {**WEB, "notify": ["hook"]}
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml(web, notifications=notifications))
    policy.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    [received] = sandbox.webhook_deliveries("policy")
    assert received["json"]["script"] == "nightly.sh"
    assert received["json"]["total_snapshots"] == "3"  # a string, as snapshots.py sent it
    assert received["body"].startswith('{"script": "nightly.sh", "provider": "digitalocean", ')
    notifications["hook"]["style"] = "snapshots"
    policy.write_text(policy_yaml(web, notifications=notifications))
    capsys.readouterr()
    assert main(["validate", "--policy", str(policy)], clock=clock) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(policy) in err and "notifications.hook.style" in err, err
    assert "snapshots.py" in err, err
