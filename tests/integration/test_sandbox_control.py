"""The control API over HTTP, the state-file round trip, and `serve()` as the CLI runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from snapshot_policy.sandbox import Sandbox, State, example_state
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN, seed


def test_state_round_trips_through_get_and_put(sandbox):
    sandbox.state.add_snapshot("hz-a", "kept", server_id=301, labels={"a": "b"}, protected=True)
    dumped = httpx.get(f"{sandbox.url}/_sandbox/state").json()
    assert dumped == sandbox.dump_state()
    assert State.from_dict(dumped).to_dict() == dumped
    dumped["servers"] = [s for s in dumped["servers"] if s["id"] != 301]
    assert httpx.put(f"{sandbox.url}/_sandbox/state", json=dumped).status_code == 200
    assert 301 not in sandbox.state.servers
    orphan = [s for s in sandbox.dump_state()["snapshots"] if s["name"] == "kept"][0]
    assert orphan["server_name"] == "app-1" and orphan["protected"] is True


def test_request_log_names_accounts_never_tokens(sandbox):
    auth = {"Authorization": f"Bearer {HZ_TOKEN}"}
    httpx.get(f"{sandbox.hetzner_endpoint}/servers/301", headers=auth)
    httpx.get(f"{sandbox.url}/v2/droplets/101", headers={"Authorization": "Bearer nope"})
    log = httpx.get(f"{sandbox.url}/_sandbox/requests").json()
    assert [(r["provider"], r["account"], r["status"]) for r in log] == [
        ("hetzner", "hz-a", 200),
        ("digitalocean", None, 401),
    ]
    assert HZ_TOKEN not in json.dumps(log)
    assert httpx.delete(f"{sandbox.url}/_sandbox/requests").status_code == 204
    assert sandbox.requests() == []


def test_faults_messages_and_deliveries_over_http(sandbox):
    created = httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"kind": "error", "service": "webhook", "status": 503},
    ).json()
    assert created["kind"] == "error" and created["fired"] == 0
    assert httpx.post(sandbox.webhook_url("x"), json={}).status_code == 503
    httpx.post(sandbox.webhook_url("x"), json={"n": 1})
    deliveries = httpx.get(f"{sandbox.url}/_sandbox/webhooks", params={"name": "x"}).json()
    assert deliveries[0]["json"] == {"n": 1}
    assert httpx.get(f"{sandbox.url}/_sandbox/telegram/messages").json() == []
    bad = httpx.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "meteor"})
    assert bad.status_code == 400
    assert httpx.delete(f"{sandbox.url}/_sandbox/faults").status_code == 204
    assert sandbox.faults.list() == []


def test_injected_clock_dates_new_snapshots(sandbox, clock):
    clock.advance(days=10)
    action = httpx.post(
        f"{sandbox.url}/v2/droplets/101/actions",
        json={"type": "snapshot"},
        headers={"Authorization": f"Bearer {DO_TOKEN}"},
    ).json()["action"]
    assert action["started_at"] == "2025-01-11T00:00:00Z"


def test_endpoints_and_env():
    with Sandbox() as sb:
        assert sb.hetzner_endpoint.endswith("/v1") and sb.telegram_base_url.endswith("/bot")
        assert sb.env()["DIGITALOCEAN_API_URL"] == sb.url
        assert httpx.get(f"{sb.url}/_sandbox/").json()["env"] == sb.env()


def test_sandbox_command_reads_a_state_file_and_stops_on_ctrl_c(tmp_path):
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(seed()))
    command = [
        sys.executable,
        "-m",
        "snapshot_policy",
        "sandbox",
        "--port",
        "0",
        "--state",
        str(state_file),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        url = process.stdout.readline().split()[3]
        exports = [process.stdout.readline().strip() for _ in range(3)]
        assert exports == [
            f"export DIGITALOCEAN_API_URL={url}",
            f"export HCLOUD_ENDPOINT={url}/v1",
            f"export TELEGRAM_API_URL={url}/bot",
        ]
        servers = httpx.get(f"{url}/v1/servers", headers={"Authorization": f"Bearer {HZ_TOKEN}"})
        assert [s["name"] for s in servers.json()["servers"]] == ["app-1", "app-2", "db-1"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_example_state_loads():
    with Sandbox(example_state()) as sb:
        assert {a.provider for a in sb.state.accounts.values()} == {"digitalocean", "hetzner"}


def test_burst_limit_round_trips_and_is_digitalocean_only():
    data = seed()
    data["accounts"][0]["burst_limit"] = 250
    state = State.from_dict(data)
    assert state.accounts["do-a"].burst_limit == 250 and state.accounts["do-b"].burst_limit is None
    assert state.to_dict()["accounts"][0]["burst_limit"] == 250
    assert "burst_limit" not in state.to_dict()["accounts"][1]
    data["accounts"][2]["burst_limit"] = 100  # hz-a: Hetzner documents no per-minute limit
    with pytest.raises(ValueError, match="burst_limit"):
        State.from_dict(data)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            '{"servers": [{"id": 1}]}',
            "state.json: servers[0] needs account, name "
            "(the format is in the sandbox's documentation)",
        ),
        (
            '{"servers": [{"account": "a", "name": "x", "colour": "red"}]}',
            "state.json: servers[0] has unknown key(s) colour",
        ),
        (
            "[1, 2]",
            "state.json: the state must be a JSON object with accounts, servers and snapshots",
        ),
        ("{", "state.json is not JSON: "),
    ],
)
def test_sandbox_command_explains_a_bad_state_file_in_a_sentence(tmp_path, content, message):
    (tmp_path / "state.json").write_text(content)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snapshot_policy",
            "sandbox",
            "--port",
            "0",
            "--state",
            "state.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and f"Error: {message}" in result.stderr
    assert "Traceback" not in result.stderr and "None" not in result.stderr


def test_sandbox_command_says_the_port_is_taken_and_what_to_do(tmp_path):
    with Sandbox() as taken:
        port = taken.url.rsplit(":", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "snapshot_policy", "sandbox", "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert (
        f"Error: cannot serve on 127.0.0.1:{port}: Address already in use; "
        "choose another port with --port"
    ) in result.stderr
