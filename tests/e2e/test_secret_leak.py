"""SPEC §5 invariant 8 end to end: distinctive secrets never leave the configuration.

Each scenario runs the CLI against the sandbox with a DigitalOcean token, a Hetzner token, a
Telegram bot token and a webhook signing secret that appear nowhere else, then searches for
each of them — whole, and a distinctive piece of it — in stdout, stderr, every file the run
left (log, audit log, journal, JSON report, metrics textfile, saved plan), every Telegram
message and webhook delivery (headers and body) the sandbox received, the sandbox's request
log, and migrate's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import daily

DO_SECRET = "dop_v1_" + "LEAKdoTOKEN7f3a9c" + "0" * 40 + "d1"
HZ_SECRET = "LEAKhzTOKENq8Zr2W" + "x" * 44 + "h2"
BOT_SECRET = "6021234567:AA" + "LEAKbotTOKENs9Pk" + "y" * 19
HOOK_SECRET = "LEAKhookSECRETm4Tq-webhook-signing-key"
SECRETS = {"DigitalOcean token": DO_SECRET, "Hetzner token": HZ_SECRET, "Telegram bot token": BOT_SECRET, "webhook secret": HOOK_SECRET}
PIECES = {"DigitalOcean token": "LEAKdoTOKEN7f3a9c", "Hetzner token": "LEAKhzTOKENq8Zr2W", "Telegram bot token": "LEAKbotTOKENs9Pk", "webhook secret": "LEAKhookSECRETm4Tq"}

POLICY = """\
version: 1
accounts:
  do: {provider: digitalocean, token: env:LEAK_DO_TOKEN}
  hz: {provider: hetzner, token: env:LEAK_HZ_TOKEN}
notifications:
  tg: {type: telegram, bot_token: env:LEAK_BOT_TOKEN, chat_id: "-1001234567890", timeout: 1, retries: 0}
  hook: {type: webhook, url: "@HOOK@", secret: env:LEAK_HOOK_SECRET, timeout: 1, retries: 0}
defaults:
  schedule: {every: 24h}
  adopt_legacy_names: true
  notify: [tg, hook]
targets:
  - {name: web, account: do, ids: [3164444], retention: {keep_last: 3}}
  - {name: db, account: hz, ids: [4711], retention: {keep_last: 2}}
settings:
  lock_file: run/snapshot-policy.lock
  log: {file: run/snapshot-policy.log, level: DEBUG}
  audit_log: run/audit.jsonl
  request_timeout: 2
"""


def cloud(now) -> dict:
    return {
        "accounts": [
            {"name": "do", "provider": "digitalocean", "tokens": [DO_SECRET]},
            {"name": "hz", "provider": "hetzner", "tokens": [HZ_SECRET]},
        ],
        "servers": [{"account": "do", "id": 3164444, "name": "web-1"}, {"account": "hz", "id": 4711, "name": "db-1"}],
        "snapshots": [
            *daily("do", 3164444, "web-1", now),
            *daily("hz", 4711, "db-1", now),
        ],
        "telegram": {"bots": [{"token": BOT_SECRET, "username": "leak_bot"}]},
    }


@pytest.fixture
def sandbox(monkeypatch, clock):
    with Sandbox(cloud(clock.now), action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        for name, value in (("LEAK_DO_TOKEN", DO_SECRET), ("LEAK_HZ_TOKEN", HZ_SECRET), ("LEAK_BOT_TOKEN", BOT_SECRET), ("LEAK_HOOK_SECRET", HOOK_SECRET)):
            monkeypatch.setenv(name, value)
        yield sb


@pytest.fixture
def policy(tmp_path, sandbox, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()  # `plan --out` does not create folders (see the report)
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(POLICY.replace("@HOOK@", sandbox.webhook_url("leak")))
    return path


def everything(capsys, sandbox: Sandbox, folder: Path) -> dict[str, str]:
    """Every place a secret could surface, by name: the files in `folder` that the tool
    wrote (not the configuration the test wrote there) and all the sandbox saw."""
    out, err = capsys.readouterr()
    places = {"stdout": out, "stderr": err}
    for path in sorted(folder.rglob("*")):
        written_by_test = path.suffix in (".yaml", ".json") and path.parent == folder or path.name == "snapshots.config" or path.parent.name == "configs"
        if path.is_file() and not written_by_test:
            places[str(path.relative_to(folder))] = path.read_text(encoding="utf-8", errors="replace")
    places["telegram messages"] = json.dumps(sandbox.telegram_messages(), ensure_ascii=False)
    places["webhook deliveries"] = json.dumps(sandbox.webhook_deliveries(), ensure_ascii=False)
    places["sandbox request log"] = json.dumps(sandbox.requests(), ensure_ascii=False)
    return places


def assert_no_secret(places: dict[str, str]) -> None:
    leaks = [
        f"{what} in {where}"
        for where, text in places.items()
        for what in SECRETS
        if SECRETS[what] in text or PIECES[what] in text
    ]
    assert not leaks, "secrets leaked: " + "; ".join(leaks)


def test_the_scenarios_really_produce_the_places_searched(policy, sandbox, tmp_path, capsys, clock):
    assert main(["apply", "--policy", str(policy), "-v", "--report", "run/report.json", "--metrics-file", "run/metrics.prom"], clock=clock) == 0
    places = everything(capsys, sandbox, tmp_path)
    for name in ("run/snapshot-policy.log", "run/audit.jsonl", "run/report.json", "run/metrics.prom"):
        assert places.get(name), f"{name} was not written"
    assert "created" in places["stdout"] and sandbox.telegram_messages() and sandbox.webhook_deliveries()
    assert any("x-snapshot-policy-signature" in {k.lower() for k in d["headers"]} for d in sandbox.webhook_deliveries())
    assert_no_secret(places)


def test_validate_and_validate_online_leak_nothing(policy, sandbox, tmp_path, capsys, clock):
    assert main(["validate", str(policy)], clock=clock) == 0
    assert main(["validate", "--online", "-v", str(policy)], clock=clock) == 0
    assert_no_secret(everything(capsys, sandbox, tmp_path))


def test_plan_in_every_output_leaks_nothing(policy, sandbox, tmp_path, capsys, clock):
    assert main(["plan", "--policy", str(policy), "-v"], clock=clock) == 0
    assert main(["plan", "--policy", str(policy), "--output", "json", "--out", "out/plan.json"], clock=clock) == 0
    assert main(["apply", "--policy", str(policy), "--dry-run", "-v"], clock=clock) == 0
    assert_no_secret(everything(capsys, sandbox, tmp_path))


def test_apply_with_notifications_report_and_metrics_leaks_nothing(policy, sandbox, tmp_path, capsys, clock):
    assert main(["plan", "--policy", str(policy), "--out", "out/plan.json"], clock=clock) == 0
    assert main(["apply", "--policy", str(policy), "--plan", "out/plan.json", "-v", "--report", "run/report.json", "--metrics-file", "run/metrics.prom"], clock=clock) == 0
    assert main(["apply", "--policy", str(policy), "--report", "run/report-2.json", "--metrics-file", "run/metrics.prom"], clock=clock) == 0
    assert_no_secret(everything(capsys, sandbox, tmp_path))


@pytest.mark.parametrize("faults", [
    pytest.param([("error", {"service": "digitalocean", "method": "GET", "status": 401, "count": None})], id="do-401"),
    pytest.param([("error", {"service": "hetzner", "method": "GET", "status": 403, "count": None})], id="hz-403"),
    # Faults that clear or are final: the CLI's retries sleep for real, so no lasting outage here
    # (the library-level fault suites in tests/chaos cover those with a fake sleep).
    pytest.param([("fail_action", {"service": "hetzner"}), ("drop", {"service": "digitalocean", "method": "DELETE", "count": 1}),
                  ("error", {"service": "digitalocean", "method": "DELETE", "status": 403, "count": None})], id="failed-action-and-failed-deletes"),
    pytest.param([("lose_reply", {"service": "digitalocean", "method": "POST", "count": 1}), ("error", {"service": "hetzner", "method": "POST", "status": 422, "count": None})], id="lost-and-refused-creates"),
    pytest.param([("error", {"service": "telegram", "status": 500, "count": None}), ("error", {"service": "webhook", "status": 502, "count": None})], id="notifications-5xx"),
    pytest.param([("drop", {"service": "telegram", "count": None}), ("drop", {"service": "webhook", "count": None})], id="notifications-dropped"),
    pytest.param([("delay", {"service": "telegram", "seconds": 1.2, "count": None}), ("delay", {"service": "webhook", "seconds": 1.2, "count": None})], id="notifications-timeout"),
    pytest.param([("error", {"service": "telegram", "status": 401, "count": None})], id="telegram-401"),
])
def test_a_failing_run_leaks_nothing(faults, policy, sandbox, tmp_path, capsys, clock):
    for kind, options in faults:
        sandbox.inject(kind, **options)
    code = main(["apply", "--policy", str(policy), "-v", "--report", "run/report.json", "--metrics-file", "run/metrics.prom"], clock=clock)
    assert code in (0, 1, 2)
    places = everything(capsys, sandbox, tmp_path)
    assert places.get("run/report.json")
    assert_no_secret(places)


def test_wrong_tokens_and_refused_endpoints_leak_nothing(policy, sandbox, tmp_path, capsys, monkeypatch, clock):
    monkeypatch.setenv("LEAK_DO_TOKEN", DO_SECRET.replace("d1", "e2"))  # a wrong token: 401, whose message must not echo it
    monkeypatch.setenv("HCLOUD_ENDPOINT", "http://api.example.invalid/v1")  # plain http off this machine: refused before sending
    assert main(["apply", "--policy", str(policy), "-v", "--report", "run/report.json"], clock=clock) == 1
    assert main(["validate", "--online", str(policy)], clock=clock) == 1
    assert_no_secret(everything(capsys, sandbox, tmp_path))


def test_config_errors_never_echo_a_secret(sandbox, tmp_path, capsys, monkeypatch, clock):
    """A misspelt key, a wrong type or a bad value right beside (or holding) a literal
    secret: the messages name the file, the key and the problem, never the value."""
    monkeypatch.chdir(tmp_path)
    broken = {
        "misspelt.yaml": POLICY.replace("token: env:LEAK_DO_TOKEN", f"tokn: {DO_SECRET}"),
        "literal-bad-type.yaml": POLICY.replace("chat_id: \"-1001234567890\"", f"chat_id: [{BOT_SECRET}]").replace("env:LEAK_BOT_TOKEN", BOT_SECRET),
        "bad-secret-ref.yaml": POLICY.replace("secret: env:LEAK_HOOK_SECRET", f"secret: {{value: {HOOK_SECRET}}}"),
        "unknown-account.yaml": POLICY.replace("token: env:LEAK_HZ_TOKEN", f"token: {HZ_SECRET}, region: {HZ_SECRET}"),
        "yaml-syntax.yaml": POLICY.replace("token: env:LEAK_HZ_TOKEN}", f"token: '{HZ_SECRET}}}"),
    }
    for name, text in broken.items():
        path = tmp_path / name
        path.write_text(text.replace("@HOOK@", sandbox.webhook_url("leak")))
        assert main(["validate", str(path)], clock=clock) == 1, name
        assert main(["plan", "--policy", str(path)], clock=clock) == 1, name
    server = {"provider": "digitalocean", "id": "3164444", "name": "web-1", "api_tokn": DO_SECRET, "retain_last_snapshots": -1,
              "telegram": {"enabled": True, "bot_token": BOT_SECRET, "chat_id": {"x": BOT_SECRET}}}
    (tmp_path / "droplet.json").write_text(json.dumps({"digitalocean_droplet": server}))
    assert main(["validate", str(tmp_path / "droplet.json")], clock=clock) == 1
    (tmp_path / "broken.json").write_text(json.dumps({"digitalocean_droplet": dict(server, api_token=DO_SECRET)})[:-30])
    assert main(["validate", str(tmp_path / "broken.json")], clock=clock) == 1
    assert_no_secret(everything(capsys, sandbox, tmp_path))


@pytest.fixture
def legacy(tmp_path, sandbox, monkeypatch):
    """A snapshots.py layout holding every secret literally, as the old files did."""
    (tmp_path / "snapshots.config").write_text(
        "[DIRECTORIES]\nconfigs_dir = configs\nlogs_dir = logs\n\n[TIMING]\ndelay_between_servers = 0\n\n[LOGGING]\nlevel = DEBUG\n\n"
        f"[TELEGRAM]\nenabled = true\nbot_token = {BOT_SECRET}\nchat_id = -1001234567890\nretries = 0\ntimeout = 1\n\n"
        f"[WEBHOOK]\nenabled = true\nurl = {sandbox.webhook_url('legacy')}\nretries = 0\ntimeout = 1\n"
    )
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "droplet.json").write_text(json.dumps({"digitalocean_droplet": {"provider": "digitalocean", "id": "3164444", "name": "web-1", "api_token": DO_SECRET, "retain_last_snapshots": 3}}))
    (configs / "server.json").write_text(json.dumps({"hetzner_cloud_server": {"provider": "hetzner", "id": 4711, "name": "db-1", "api_token": HZ_SECRET, "retain_last_snapshots": 2}}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_legacy_layout_validate_plan_apply_and_migrate_leak_nothing(legacy, sandbox, capsys, clock):
    assert main(["validate", "-v"], clock=clock) == 0
    assert main(["plan"], clock=clock) == 0
    assert main(["apply", "-v", "--report", "logs/report.json", "--metrics-file", "logs/metrics.prom"], clock=clock) == 0
    places = everything(capsys, sandbox, legacy)
    assert places.get("logs/snapshots.log") and sandbox.telegram_messages()
    assert_no_secret(places)

    assert main(["migrate"], clock=clock) == 0
    out, err = capsys.readouterr()
    assert "env:" in out and "export" in err
    assert_no_secret({"migrate stdout": out, "migrate stderr": err})
    (legacy / "snapshot-policy.yaml").write_text(out)
    assert main(["validate", "--policy", "snapshot-policy.yaml"], clock=clock) == 1  # the exported variables are not set here
    assert_no_secret(everything(capsys, sandbox, legacy))


def test_a_failing_legacy_run_leaks_nothing(legacy, sandbox, capsys, clock):
    sandbox.inject("fail_action", service="digitalocean")
    sandbox.inject("error", service="hetzner", method="GET", status=401, count=None)
    sandbox.inject("error", service="telegram", status=500, count=None)
    assert main(["apply", "-v", "--report", "logs/report.json"], clock=clock) == 1
    assert_no_secret(everything(capsys, sandbox, legacy))
