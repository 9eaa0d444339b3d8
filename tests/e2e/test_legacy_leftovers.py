"""What snapshots.py's code did, where its manual said less, for a legacy folder run through
the sandbox (issue 21, review of items 3 and 6):

- an INI `message_*` / `payload_*` set empty sent its FINAL_STATUS text and its own body,
  `total_snapshots` a number;
- a server whose snapshot was made but whose deletions failed was reported a success, with
  the snapshot's name;
- a channel is on when the server file's `enabled` says so, else when snapshots.config's
  does; a file that enables Telegram without both its bot_token and chat_id takes both from
  snapshots.config.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from snapshot_policy.cli import main
from snapshot_policy.config import load
from snapshot_policy.config.migrate import migrate
from snapshot_policy.config.policy import load_policy
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import BOT_TOKEN, DO_TOKEN, HZ_TOKEN, cloud

CHAT = "-1001234567890"
OTHER_BOT = "6007654321:AAOtherBotTokenForTheSandboxOnly12"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
HOST = os.uname().nodename


@pytest.fixture
def sandbox(monkeypatch, clock):
    """The usual cloud plus `web_main-1` (no snapshots yet) and a second bot, so a test sees
    which bot token a message was sent with."""
    state = cloud(clock.now)
    state["servers"].append({"account": "do", "id": 3164446, "name": "web_main-1"})
    state["telegram"]["bots"].append({"token": OTHER_BOT, "username": "other_bot"})
    with Sandbox(state, action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


def write_folder(path, ini: str, web: dict | None = None, db: dict | None = None, retain=0):
    """snapshots.config with `ini`, and server files for web_main-1 and db-1 with the
    notification sections given (None: left out)."""
    (path / "snapshots.config").write_text(ini)
    configs = path / "configs"
    configs.mkdir()
    for file, wrapper, provider, server_id, name, token, sections in (
        (
            "web.json",
            "digitalocean_droplet",
            "digitalocean",
            "3164446",
            "web_main-1",
            DO_TOKEN,
            web,
        ),
        ("db.json", "hetzner_cloud_server", "hetzner", 4711, "db-1", HZ_TOKEN, db),
    ):
        body = {"provider": provider, "id": server_id, "name": name, "api_token": token}
        body["retain_last_snapshots"] = retain
        (configs / file).write_text(json.dumps({wrapper: {**body, **(sections or {})}}))
    return path


def ini(telegram: str = "", webhook: str = "") -> str:
    return (
        "[TIMING]\ndelay_between_servers = 0\n\n"
        f"[TELEGRAM]\nenabled = true\nbot_token = {BOT_TOKEN}\nchat_id = {CHAT}\n{telegram}\n"
        f"[WEBHOOK]\n{webhook}"
    )


BOTH = {"telegram": {"enabled": True}, "webhook": {"enabled": True}}


def by_server(messages: list[dict]) -> dict[str, dict]:
    return {re.search(r"Server:\*? `([^`]+)`", m["text"]).group(1): m for m in messages}


def test_empty_ini_templates_send_the_old_final_status_text_and_body(
    tmp_path, sandbox, monkeypatch, capsys, clock
):
    folder = write_folder(
        tmp_path,
        ini(
            "message_success =\nmessage_failure =  \n",
            f"enabled = true\nurl = {sandbox.webhook_url('n8n')}\n"
            "payload_success =\npayload_failure =\n",
        ),
        BOTH,
        BOTH,
        retain=9,
    )
    sandbox.inject("fail_action", service="hetzner")
    monkeypatch.chdir(folder)
    assert main(["apply"], clock=clock) == 2
    capsys.readouterr()

    texts = {k: m["text"] for k, m in by_server(sandbox.telegram_messages()).items()}
    assert re.fullmatch(
        r"\*FINAL_STATUS\*\n\*Script:\* `snapshots\.py`\n\*Provider:\* `DIGITALOCEAN`\n"
        r"\*Server:\* `web_main-1`\n\*Status:\* `SUCCESS`\n"
        rf"\*Hostname:\* `{re.escape(HOST)}`\n\*Timestamp:\* `{STAMP}`\n"
        r"\*Snapshot:\* `web_main-1-\d{14}`\n\*Total Snapshots:\* `1 snapshots exist`",
        texts["web_main-1"],
    ), texts["web_main-1"]
    assert re.fullmatch(
        r"\*FINAL_STATUS\*\n\*Script:\* `snapshots\.py`\n\*Provider:\* `HETZNER`\n"
        r"\*Server:\* `db-1`\n\*Status:\* `FAILURE`\n"
        rf"\*Hostname:\* `{re.escape(HOST)}`\n\*Timestamp:\* `{STAMP}`\n"
        r"\*Snapshot:\* `none`\n\*Total Snapshots:\* `5 snapshots exist`",
        texts["db-1"],
    ), texts["db-1"]

    bodies = {d["json"]["server"]: d["body"] for d in sandbox.webhook_deliveries("n8n")}
    web_name = re.search(r"web_main-1-\d{14}", texts["web_main-1"]).group()
    # The old body: every value a string but total_snapshots, a number, in this order.
    assert re.fullmatch(
        re.escape(
            '{"script": "snapshots.py", "provider": "digitalocean", "server": "web_main-1", '
            f'"server_id": "3164446", "status": "SUCCESS", "hostname": "{HOST}", "timestamp": "'
        )
        + STAMP
        + re.escape(
            f'", "snapshot_name": "{web_name}", "total_snapshots": 1, '
            '"snapshot_info": "1 snapshots exist"}'
        ),
        bodies["web_main-1"],
    ), bodies["web_main-1"]
    assert json.loads(bodies["db-1"])["snapshot_name"] == "none"
    assert json.loads(bodies["db-1"])["total_snapshots"] == 5


def test_empty_ini_templates_migrate_to_a_policy_with_the_same_channels(tmp_path, sandbox):
    folder = write_folder(
        tmp_path,
        ini(
            "message_success =\n",
            f"enabled = true\nurl = {sandbox.webhook_url('n8n')}\npayload_failure =\n",
        ),
        BOTH,
    )
    legacy = load(legacy_config=folder / "snapshots.config", cwd=folder)
    assert legacy.errors == ()
    text = migrate(legacy.document, legacy.base).text
    assert "    message_success: ''\n" in text and "    payload_failure: {}\n" in text
    (folder / "policy.yaml").write_text(text)
    env = {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "DIGITALOCEAN_TOKEN_1": DO_TOKEN, "HCLOUD_TOKEN_1": "x"}
    policy = load_policy(folder / "policy.yaml", env)
    assert [str(p) for p in policy.problems if not p.warning] == []
    telegram, webhook = policy.targets[0].notify
    assert (telegram.style, telegram.message_success, telegram.message_failure) == (
        "snapshots.py",
        "",
        None,
    )
    assert (webhook.payload_failure, webhook.payload_success) == ({}, None)


def test_a_made_snapshot_whose_deletions_failed_is_reported_a_success_as_before(
    tmp_path, sandbox, monkeypatch, capsys, clock
):
    webhook = f"enabled = true\nurl = {sandbox.webhook_url('n8n')}\n"
    folder = write_folder(tmp_path, ini(webhook=webhook), None, BOTH, retain=2)
    # One of its four deletions is refused: it counts among the 3 left (the new one, the one
    # kept, the one not deleted).
    sandbox.inject("error", service="hetzner", method="DELETE", status=403)
    monkeypatch.chdir(folder)
    assert main(["apply"], clock=clock) == 2  # the tool's exit code says a deletion failed
    capsys.readouterr()

    texts = {k: m["text"] for k, m in by_server(sandbox.telegram_messages()).items()}
    assert re.fullmatch(
        r"\*Snapshot Success\*\nServer: `db-1`\nSnapshot: `db-1-\d{14}`\nTotal: `3` snapshots",
        texts["db-1"],
    ), texts["db-1"]
    body = json.loads(
        next(d["body"] for d in sandbox.webhook_deliveries("n8n") if '"db-1"' in d["body"])
    )
    assert (body["status"], body["total_snapshots"], body["snapshot_info"]) == (
        "SUCCESS",
        "3",
        "3 snapshots exist",
    )
    assert re.fullmatch(r"db-1-\d{14}", body["snapshot_name"])


@pytest.mark.parametrize(
    ("ini_enabled", "sections", "sent"),
    [
        # No section in the file: snapshots.config's `enabled` decides, as in snapshots.py.
        ("true", None, True),
        ("false", None, False),
        # The file's `enabled` decides over it, either way.
        ("false", {"telegram": {"enabled": True}}, True),
        ("true", {"telegram": {"enabled": False}}, False),
        # A section without `enabled` leaves it to snapshots.config.
        ("true", {"telegram": {"chat_id": CHAT}}, True),
        ("false", {"telegram": {"chat_id": CHAT}}, False),
    ],
)
def test_a_channel_is_on_as_the_server_file_or_else_snapshots_config_says(
    tmp_path, sandbox, monkeypatch, capsys, clock, ini_enabled, sections, sent
):
    config = ini().replace("enabled = true", f"enabled = {ini_enabled}", 1)
    folder = write_folder(tmp_path, config, sections, {"telegram": {"enabled": False}}, 3)
    monkeypatch.chdir(folder)
    assert main(["apply"], clock=clock) == 0
    capsys.readouterr()
    assert [m["text"].split("`")[1] for m in sandbox.telegram_messages()] == (
        ["web_main-1"] if sent else []
    )


def test_a_file_enabling_telegram_without_both_credentials_takes_both_from_the_config(
    tmp_path, sandbox, monkeypatch, capsys, clock
):
    """snapshots.py: `enabled: true` with only a bot_token in the file used snapshots.config's
    bot_token and chat_id, both; without `enabled`, each missing key came from there alone."""
    folder = write_folder(
        tmp_path,
        ini(),
        {"telegram": {"enabled": True, "bot_token": OTHER_BOT}},
        {"telegram": {"bot_token": OTHER_BOT}},
        3,
    )
    monkeypatch.chdir(folder)
    assert main(["apply"], clock=clock) == 0
    capsys.readouterr()
    sent = {
        m["text"].split("`")[1]: (m["bot"], str(m["chat_id"])) for m in sandbox.telegram_messages()
    }
    assert sent == {"web_main-1": ("ops_bot", CHAT), "db-1": ("other_bot", CHAT)}
