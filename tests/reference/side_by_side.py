"""One snapshots.py folder and one sandbox state, run by snapshots.py and by this tool, and what
each produced, normalised for comparison (issue 21, "Done when").

The folder is what the README's "Coming from snapshots.py" keeps: snapshots.config with the
global Telegram and webhook settings, and three server files — a droplet with no snapshots
yet, a Hetzner server whose snapshot fails, and one with its own templates (a nested
payload, `{droplet_name}`). Nothing in it touches a difference the README lists on purpose:
no server has more snapshots than it keeps (retention differs by one) unless its deletions
fail, no snapshot is unmanaged or named like another server's (the totals count differently).

`SCENARIOS`: "defaults", with no `message_*`/`payload_*` in snapshots.config (the old
built-in templates); "empty_templates", with them set empty (its FINAL_STATUS text, its own
body); "failed_deletions", where app-1 keeps only its new snapshot and the cloud refuses
every deletion (both ask to delete its old one; snapshots.py reported the server a
success). The reference, `snapshots_py_reference.json`, holds what
snapshots.py produced (`record_snapshots_py.py` rewrites it); times, time stamps, the host's
name and the PID are normalised, and the names' time zone is checked when recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from snapshot_policy.sandbox import Sandbox

HERE = Path(__file__).parent
REFERENCE = HERE / "snapshots_py_reference.json"
RUNNER = HERE / "run_snapshots_py.py"
TZ = "Europe/Berlin"
SCENARIOS = ("defaults", "empty_templates", "failed_deletions")

DO_TOKEN = "dop_v1_5a0d3f8b2c4e6a7190b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7"
HZ_TOKEN = "Zr8MnO3qS5uT7wX9zA1bC2dE4fG6hI8jK0lM2nO4pQ6rS8tU0vW2xY4zA6bC8dE0"
BOT_TOKEN = "7311234567:AAHk3mX9pQ2rS5tU8vW1yZ4bC7dE0fG3hJ6"
CHAT = "-1001234567890"
# Where a server's snapshot fails: the sandbox's `fail_action` for it.
FAILING_SERVER = 4711


def state(now: datetime) -> dict:
    """The sandbox's cloud: its seeded snapshots named as snapshots.py named them."""

    def old(server_id: int, name: str, days: int) -> dict:
        made = now - timedelta(days=days, seconds=5)
        return {
            "account": "hz",
            "server_id": server_id,
            "name": f"{name}-{made:%Y%m%d%H%M%S}",
            "created": made.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    return {
        "accounts": [
            {"name": "do", "provider": "digitalocean", "tokens": [DO_TOKEN]},
            {"name": "hz", "provider": "hetzner", "tokens": [HZ_TOKEN]},
        ],
        "servers": [
            {"account": "do", "id": 3164446, "name": "web_main-1"},
            {"account": "hz", "id": FAILING_SERVER, "name": "db-1"},
            {"account": "hz", "id": 4712, "name": "app-1"},
        ],
        "snapshots": [
            old(FAILING_SERVER, "db-1", 1),
            old(FAILING_SERVER, "db-1", 2),
            old(4712, "app-1", 1),
        ],
        "telegram": {"bots": [{"token": BOT_TOKEN, "username": "ops_bot"}]},
    }


def write_folder(folder: Path, webhook_url: str, scenario: str) -> Path:
    """The snapshots.py folder of `scenario`, its webhook at `webhook_url`."""
    empty = "message_success =\nmessage_failure =\n" if scenario == "empty_templates" else ""
    payloads = "payload_success =\npayload_failure =\n" if scenario == "empty_templates" else ""
    (folder / "snapshots.config").write_text(
        "[TIMING]\ndelay_between_servers = 0\n\n"
        f"[TELEGRAM]\nenabled = true\nbot_token = {BOT_TOKEN}\nchat_id = {CHAT}\n{empty}\n"
        f"[WEBHOOK]\nenabled = true\nurl = {webhook_url}\n{payloads}"
    )
    configs = folder / "configs"
    configs.mkdir()
    own = {
        "telegram": {
            "message_success": "✓ {droplet_name} ({droplet_id}): {snapshot_name}, {snapshot_info}"
        },
        "webhook": {
            "payload_success": {
                "event": "snapshot.{status}",
                "server": {"name": "{server_name}", "id": "{server_id}", "tags": ["{provider}", 7]},
                "total": "{total_snapshots}",
                "script": "{script}",
            }
        },
    }
    keep = 0 if scenario == "failed_deletions" else 3  # app-1's: 0 deletes its old one
    for file, wrapper, provider, server_id, name, token, retain, extra in (
        (
            "a_web.json",
            "digitalocean_droplet",
            "digitalocean",
            "3164446",
            "web_main-1",
            DO_TOKEN,
            3,
            {},
        ),
        ("b_db.json", "hetzner_cloud_server", "hetzner", FAILING_SERVER, "db-1", HZ_TOKEN, 5, {}),
        ("c_app.json", "hetzner_cloud_server", "hetzner", 4712, "app-1", HZ_TOKEN, keep, own),
    ):
        server = {"provider": provider, "id": server_id, "name": name, "api_token": token}
        server["retain_last_snapshots"] = retain
        (configs / file).write_text(json.dumps({wrapper: {**server, **extra}}, indent=2))
    return folder


def faults(sandbox: Sandbox, scenario: str) -> None:
    """What goes wrong in `scenario`: db-1's snapshot; in "failed_deletions" every deletion."""
    sandbox.inject("fail_action", service="hetzner", server_id=FAILING_SERVER)
    if scenario == "failed_deletions":
        sandbox.inject("error", service="hetzner", method="DELETE", status=403, count=None)


def run_old(script: Path, folder: Path, scenario: str, tz: str = TZ) -> dict:
    """Run snapshots.py (a copy in `folder`) on a fresh sandbox; return its normalised output."""
    with Sandbox(state(datetime.now(timezone.utc)), action_seconds=0.05) as sandbox:
        faults(sandbox, scenario)
        write_folder(folder, sandbox.webhook_url("n8n"), scenario)
        shutil.copy(script, folder / "snapshots.py")
        before = _names(sandbox)
        env = {"PATH": os.environ.get("PATH", ""), "TZ": tz, "LANG": "C.UTF-8"}
        done = subprocess.run(
            [sys.executable, str(RUNNER), str(folder / "snapshots.py"), sandbox.url],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return collect(sandbox, folder, before, done.returncode, done.stdout + done.stderr, tz)


def run_ours(
    main: Callable[..., int],
    clock: Callable[[], datetime],
    sandbox: Sandbox,
    folder: Path,
    scenario: str,
    tz: str = TZ,
) -> dict:
    """Run this tool's `apply` (`main(argv, clock=clock)`) on the folder; same output as run_old."""
    faults(sandbox, scenario)
    write_folder(folder, sandbox.webhook_url("n8n"), scenario)
    before = _names(sandbox)
    code = main(["apply", "--config", str(folder / "snapshots.config")], clock=clock)
    return collect(sandbox, folder, before, code, "", tz)


def collect(
    sandbox: Sandbox, folder: Path, before: set[str], code: int, cron: str, tz: str
) -> dict:
    """What a run produced, normalised: Telegram texts and webhook bodies in the order sent,
    the names made and deleted, the log lines operators grep, the cron output's lines."""
    after = {s["name"]: s for s in sandbox.dump_state()["snapshots"]}
    made = sorted(set(after) - before)
    log = folder / "logs" / "snapshots.log"
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    return {
        "exit_code": code,
        "telegram": [
            {"chat_id": str(m["chat_id"]), "parse_mode": m["parse_mode"], "text": normal(m["text"])}
            for m in sandbox.telegram_messages()
            if m["delivered"]
        ],
        "webhooks": [normal(d["body"]) for d in sandbox.webhook_deliveries("n8n")],
        "created": [normal(name) for name in made],
        "deleted": sorted(before - set(after)),
        "names_in_local_time": all(_local(name, after[name]["created"], tz) for name in made),
        "log": [normal(line) for line in lines if "FINAL_STATUS |" in line or "SUMMARY:" in line],
        "cron": [normal(line) for line in cron.splitlines() if line.strip()],
    }


def normal(text: str) -> str:
    """`text` with what differs from run to run replaced: times, name stamps, host, PID."""
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<TIME>", text)
    text = re.sub(r"(?<=-)\d{14}\b", "<STAMP>", text)
    text = re.sub(r"\(PID: \d+\)", "(PID: <PID>)", text)
    for where in _HOSTS:
        text = where.sub(r"\g<1><HOST>\g<2>", text)
    return text


# Where a run names its host: the body's `hostname`, the FINAL_STATUS text's and log line's.
_HOSTS = (
    re.compile(r'("hostname": ")[^"]*(")'),
    re.compile(r"(\*Hostname:\* `)[^`]*(`)"),
    re.compile(r"(FINAL_STATUS(?: \| [^|]*){4} \| )[^|]*( \|)"),
)


def _names(sandbox: Sandbox) -> set[str]:
    return {s["name"] for s in sandbox.dump_state()["snapshots"]}


def _local(name: str, created: str, tz: str) -> bool:
    """Whether `name`'s stamp is the snapshot's time in `tz` (within two minutes: the name is
    given when the snapshot is asked for, the cloud dates it when it starts)."""
    stamp = datetime.strptime(name[-14:], "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo(tz))
    made = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return abs((stamp - made).total_seconds()) <= 120


def load_reference() -> dict:
    return json.loads(REFERENCE.read_text())
