"""A snapshots.py layout with the same server name on both clouds (issue 14, item 1).

While moving between clouds, a DigitalOcean droplet `web` and a Hetzner server `web` each have
their file in configs/, and snapshots.py runs both. A legacy target is its file (`do-web`,
`hz-web`); the server's name may repeat, and every message still calls the server `web`.
"""

from __future__ import annotations

import json
import re

import pytest

from snapshot_policy import config
from snapshot_policy.cli import main
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import BOT_TOKEN, DO_TOKEN, HZ_TOKEN, daily, legacy_name

DROPLET, SERVER = 3164444, 4711


@pytest.fixture
def twins(monkeypatch, clock):
    """The sandbox: `web` on each cloud, with four days of snapshots snapshots.py made."""
    state = {
        "accounts": [
            {"name": "do", "provider": "digitalocean", "tokens": [DO_TOKEN]},
            {"name": "hz", "provider": "hetzner", "tokens": [HZ_TOKEN]},
        ],
        "servers": [
            {"account": "do", "id": DROPLET, "name": "web"},
            {"account": "hz", "id": SERVER, "name": "web"},
        ],
        "snapshots": [
            *daily("do", DROPLET, "web", clock.now, range(1, 5)),
            *daily("hz", SERVER, "web", clock.now, range(1, 5)),
        ],
        "telegram": {"bots": [{"token": BOT_TOKEN, "username": "ops_bot"}]},
    }
    with Sandbox(state, action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


@pytest.fixture
def layout(tmp_path, twins, monkeypatch):
    """snapshots.config and one file per cloud, both naming their server `web`."""
    (tmp_path / "snapshots.config").write_text(
        "[TIMING]\ndelay_between_servers = 0\n\n"
        f"[TELEGRAM]\nenabled = true\nbot_token = {BOT_TOKEN}\nchat_id = -1001234567890\n"
        "message_success = *OK* `{server_name}` ({provider} {server_id})"
        "\\nsnapshot `{snapshot_name}`\\n{snapshot_info}\n\n"
        f"[WEBHOOK]\nenabled = true\nurl = {twins.webhook_url('n8n')}\n"
        'payload_success = {"server": "{server_name}", "id": "{server_id}", '
        '"total": "{total_snapshots}"}\n'
    )
    configs = tmp_path / "configs"
    configs.mkdir()
    droplet = {
        "provider": "digitalocean",
        "id": str(DROPLET),
        "name": "web",
        "api_token": DO_TOKEN,
        "retain_last_snapshots": 3,
    }
    server = {
        "provider": "hetzner",
        "id": SERVER,
        "name": "web",
        "api_token": HZ_TOKEN,
        "retain_last_snapshots": 2,
    }
    (configs / "do-web.json").write_text(json.dumps({"digitalocean_droplet": droplet}))
    (configs / "hz-web.json").write_text(json.dumps({"hetzner_cloud_server": server}))
    for path in (tmp_path / "snapshots.config", configs / "do-web.json", configs / "hz-web.json"):
        path.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot_names(sandbox, server_id):
    return sorted(
        s["name"] for s in sandbox.dump_state()["snapshots"] if s["server_id"] == server_id
    )


def test_same_name_on_two_clouds_validates_as_two_targets(layout, capsys, clock):
    assert main(["validate"], clock=clock) == 0
    captured = capsys.readouterr()
    assert "3 file(s) valid: 2 target(s)." in captured.out
    assert "also configured" not in captured.err
    loaded = config.load()
    assert [(t.name, t.server_name, t.account.provider) for t in loaded.targets] == [
        ("do-web", "web", "digitalocean"),
        ("hz-web", "web", "hetzner"),
    ]


def test_same_name_on_two_clouds_applies_with_exit_0_and_each_server_gets_its_snapshot(
    layout, twins, capsys, clock
):
    code = main(
        ["apply", "--report", "logs/report.json", "--metrics-file", "logs/metrics.prom"],
        clock=clock,
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for server_id, kept in ((DROPLET, 3), (SERVER, 2)):
        names = snapshot_names(twins, server_id)
        assert len(names) == kept and all(re.fullmatch(r"web-\d{14}", n) for n in names), names
        assert legacy_name("web", clock.now, 1) in names
    # Every record keyed by target keeps the two apart; each still names the server `web`.
    report = json.loads((layout / "logs" / "report.json").read_text())
    rows = sorted(
        (t["target"], t["server_name"], t["provider"], t["created"] is not None)
        for t in report["targets"]
    )
    assert rows == [("do-web", "web", "digitalocean", True), ("hz-web", "web", "hetzner", True)]
    metrics = (layout / "logs" / "metrics.prom").read_text()
    assert 'target="do-web"' in metrics and 'target="hz-web"' in metrics
    assert (
        "do-web: web (digitalocean server 3164444)" in captured.out
        and "hz-web: web (hetzner server 4711)" in captured.out
    )


def test_same_name_on_two_clouds_messages_name_the_server_as_snapshots_py_did(layout, twins, clock):
    assert main(["apply"], clock=clock) == 0
    texts = sorted(m["text"] for m in twins.telegram_messages())
    assert len(texts) == 2
    assert re.fullmatch(
        r"\*OK\* `web` \(digitalocean 3164444\)\nsnapshot `web-\d{14}`\n3 snapshots exist", texts[0]
    ), texts
    assert re.fullmatch(
        r"\*OK\* `web` \(hetzner 4711\)\nsnapshot `web-\d{14}`\n2 snapshots exist", texts[1]
    ), texts
    payloads = sorted((d["json"] for d in twins.webhook_deliveries("n8n")), key=lambda p: p["id"])
    assert payloads == [
        {"server": "web", "id": "3164444", "total": "3"},
        {"server": "web", "id": "4711", "total": "2"},
    ]


def test_target_picks_one_file_and_a_server_name_says_which_files_have_it(
    layout, twins, capsys, clock
):
    assert main(["apply", "--target", "hz-web"], clock=clock) == 0
    assert (
        len(snapshot_names(twins, SERVER)) == 2 and len(snapshot_names(twins, DROPLET)) == 4
    )  # the droplet untouched
    capsys.readouterr()
    assert main(["plan", "--target", "web"], clock=clock) == 1
    err = capsys.readouterr().err
    assert "no target named web; targets: do-web, hz-web" in err
    assert (
        "web is the server name in do-web, hz-web: a snapshots.py target is named after its file"
        in err
    )


def test_same_name_on_two_clouds_migrates_to_a_policy_that_plans_identically(
    layout, twins, capsys, clock
):
    assert main(["plan", "--output", "json"], clock=clock) == 0
    legacy_plan = json.loads(capsys.readouterr().out)
    assert main(["migrate", "--out", "snapshot-policy.yaml"], clock=clock) == 0
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DIGITALOCEAN_TOKEN_1", DO_TOKEN)
        env.setenv("HCLOUD_TOKEN_1", HZ_TOKEN)
        env.setenv("TELEGRAM_BOT_TOKEN", BOT_TOKEN)
        assert (
            main(["plan", "--policy", "snapshot-policy.yaml", "--output", "json"], clock=clock) == 0
        )
    policy_plan = json.loads(capsys.readouterr().out)
    assert policy_plan["targets"] == legacy_plan["targets"]


def test_a_failure_before_the_server_is_found_still_names_the_server(layout, twins, clock):
    state = twins.dump_state()
    state["servers"] = [s for s in state["servers"] if s["id"] != DROPLET]
    twins.load_state(state)
    assert main(["apply"], clock=clock) == 2
    failed = [m["text"] for m in twins.telegram_messages() if "failed" in m["text"].lower()]
    # snapshots.py's failure text (issue 21, item 3).
    assert failed and "Server: `web`" in failed[0], failed
