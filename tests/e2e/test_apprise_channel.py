"""An apprise channel (issue 21, item 12) through the CLI against the sandbox: apprise's `json://`
service posts to the sandbox's webhook sink on 127.0.0.1, so nothing reaches the internet."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading

import pytest

from snapshot_policy.cli import main
from tests.e2e.cloud import BOT_TOKEN, DO_TOKEN, HZ_TOKEN
from tests.e2e.policies import DB, DEBUG_LOG, WEB, policy_yaml

TOKEN = "Zq7xK2mP9vR4tY8wB3nL6jH1"  # a secret in the URL's path, as a service's key would be


def write_policy(tmp_path, notifications, targets=(WEB, DB)):
    targets = [{**t, "notify": list(notifications)} for t in targets]
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(policy_yaml(*targets, notifications=notifications, settings=DEBUG_LOG))
    return path


@pytest.fixture
def apprise_env(sandbox, tokens, monkeypatch):
    url = sandbox.apprise_url(f"ops/{TOKEN}")
    monkeypatch.setenv("OPS_APPRISE_URL", url)
    return url


def apply(path, clock, *extra):
    return main(["apply", "--policy", str(path), *extra], clock=clock)


def received(sandbox, name=f"ops/{TOKEN}"):
    return [d["json"] for d in sandbox.webhook_deliveries(name)]


def test_each_target_arrives_with_its_title_and_body(tmp_path, sandbox, apprise_env, capsys, clock):
    path = write_policy(tmp_path, {"ops": {"type": "apprise", "urls": ["env:OPS_APPRISE_URL"]}})
    assert apply(path, clock) == 0
    messages = sorted(received(sandbox), key=lambda m: m["message"])
    assert [m["title"] for m in messages] == ["✅ Snapshot succeeded"] * 2
    assert [m["type"] for m in messages] == ["success", "success"]
    assert messages[0]["message"].startswith("Server: db-1 (id 4711, hetzner)\nSnapshot: db-1-")
    assert messages[1]["message"].startswith("Server: web-1 (id 3164444, digitalocean)")
    assert "*" not in messages[0]["message"]  # plain text, not Telegram's Markdown


def test_templates_and_summary_as_for_telegram(tmp_path, sandbox, apprise_env, capsys, clock):
    notifications = {
        "ops": {
            "type": "apprise",
            "urls": ["env:OPS_APPRISE_URL"],
            "message_success": "Done: {server_name}\n{snapshot_info} on {provider}",
        },
        "sum": {"type": "apprise", "urls": [sandbox.apprise_url("sum")], "summary": True},
    }
    assert apply(write_policy(tmp_path, notifications), clock) == 0
    assert sorted((m["title"], m["message"]) for m in received(sandbox)) == [
        ("Done: db-1", "2 snapshots exist on hetzner"),
        ("Done: web-1", "3 snapshots exist on digitalocean"),
    ]
    [summary] = received(sandbox, "sum")
    assert summary["title"] == "✅ Snapshot run: 2 succeeded, 0 failed"
    assert "db-1 (hetzner)" in summary["message"] and "web-1 (digitalocean)" in summary["message"]


def test_a_one_line_template_is_the_body_without_a_title(
    tmp_path, sandbox, apprise_env, capsys, clock
):
    notifications = {
        "ops": {
            "type": "apprise",
            "urls": ["env:OPS_APPRISE_URL"],
            "message_success": "ok {server_name}",
        }
    }
    assert apply(write_policy(tmp_path, notifications, [DB]), clock) == 0
    assert [(m["title"], m["message"]) for m in received(sandbox)] == [("", "ok db-1")]


def test_a_receiver_answering_500_is_retried_then_reported_and_the_exit_code_stays(
    tmp_path, sandbox, apprise_env, capsys, clock
):
    sandbox.inject("error", service="webhook", status=500, count=None)
    notifications = {
        "ops": {
            "type": "apprise",
            "urls": ["env:OPS_APPRISE_URL"],
            "retries": 2,
            "base_delay_between_retries": 0,
        }
    }
    path = write_policy(tmp_path, notifications, [DB])
    report = tmp_path / "report.json"
    # A notification never changes the exit code; -v puts the log on the console too.
    assert apply(path, clock, "-v", "--report", str(report)) == 0
    [delivery] = json.loads(report.read_text())["notifications"]
    assert delivery["ok"] is False and delivery["attempts"] == 3 and delivery["kind"] == "apprise"
    assert "error=500" in delivery["error"]
    assert len(sandbox.webhook_deliveries()) == 0  # the fault answered before the sink recorded
    log = (tmp_path / "run" / "snapshot-policy.log").read_text()
    assert "notify: apprise 'ops', target db: failed after 3 request(s)" in log
    output = capsys.readouterr()
    assert "notify: apprise 'ops', target db: failed after 3 request(s)" in output.err
    for text in (output.out, output.err, log, report.read_text()):
        assert TOKEN not in text and apprise_env not in text


class _Forbidden(http.server.BaseHTTPRequestHandler):
    """An ntfy server that refuses every message, as ntfy.sh does a topic it protects."""

    def do_POST(self):  # noqa: N802 -- the name http.server calls
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"code":40301,"http":403,"error":"forbidden"}'
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def forbidden():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_an_ntfy_topic_made_of_words_is_never_shown(
    tmp_path, sandbox, tokens, forbidden, capsys, clock
):
    """The topic is the secret of an ntfy channel, and apprise neither hides it in privacy mode
    nor keeps it out of its failure text ("… to topic 'backups-of-acme': forbidden")."""
    topic = "backups-of-acme"
    notifications = {"ops": {"type": "apprise", "urls": [f"ntfy://127.0.0.1:{forbidden}/{topic}"]}}
    report = tmp_path / "report.json"
    assert (
        apply(write_policy(tmp_path, notifications, [DB]), clock, "-v", "--report", str(report))
        == 0
    )
    [delivery] = json.loads(report.read_text())["notifications"]
    assert (delivery["ok"], delivery["attempts"], delivery["error"]) == (
        False,
        1,
        "ntfy: error=403",
    )
    log = (tmp_path / "run" / "snapshot-policy.log").read_text()
    assert "notify: apprise 'ops', target db: failed after 1 request(s): ntfy: error=403" in log
    output = capsys.readouterr()
    for text in (output.out, output.err, log, report.read_text()):
        assert topic not in text


def test_a_4xx_refusal_is_final(tmp_path, sandbox, apprise_env, capsys, clock):
    sandbox.inject("error", service="webhook", status=403, count=None)
    path = write_policy(
        tmp_path, {"ops": {"type": "apprise", "urls": ["env:OPS_APPRISE_URL"]}}, [DB]
    )
    report = tmp_path / "report.json"
    assert apply(path, clock, "--report", str(report)) == 0
    [delivery] = json.loads(report.read_text())["notifications"]
    assert (delivery["ok"], delivery["attempts"]) == (False, 1)


def test_a_receiver_that_is_down_fails_the_delivery_not_the_run(
    tmp_path, sandbox, tokens, monkeypatch, capsys, clock
):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OPS_APPRISE_URL", f"json://127.0.0.1:{port}/hooks/{TOKEN}")
    notifications = {
        "ops": {
            "type": "apprise",
            "urls": ["env:OPS_APPRISE_URL"],
            "retries": 1,
            "base_delay_between_retries": 0,
        }
    }
    report = tmp_path / "report.json"
    assert apply(write_policy(tmp_path, notifications, [DB]), clock, "--report", str(report)) == 0
    [delivery] = json.loads(report.read_text())["notifications"]
    assert (delivery["ok"], delivery["attempts"]) == (False, 2)
    assert "Connection error" in delivery["error"]
    output = capsys.readouterr()
    assert TOKEN not in output.out + output.err + report.read_text()


def test_each_url_of_a_channel_gets_the_message(tmp_path, sandbox, apprise_env, capsys, clock):
    urls = ["env:OPS_APPRISE_URL", sandbox.apprise_url("second")]
    report = tmp_path / "report.json"
    path = write_policy(tmp_path, {"ops": {"type": "apprise", "urls": urls}}, [DB])
    assert apply(path, clock, "--report", str(report)) == 0
    assert len(received(sandbox)) == len(received(sandbox, "second")) == 1
    deliveries = json.loads(report.read_text())["notifications"]
    assert sorted(d["channel"] for d in deliveries) == ["ops#1", "ops#2"]


def test_a_policy_without_an_apprise_channel_does_not_load_apprise(tmp_path, sandbox, tokens):
    path = write_policy(tmp_path, {})
    probe = f"""
import sys
from snapshot_policy.cli import main
for argv in (["validate", "--policy", {str(path)!r}], ["--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
print("APPRISE", "apprise" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.splitlines()[-1] == "APPRISE False"


assert BOT_TOKEN and DO_TOKEN and HZ_TOKEN
