"""A run with nothing due prints nothing, so an hourly cron line mails only when something
happened; `apply --quiet` prints only failures (issue 21, item 9). Against the sandbox, through
the real SDKs, as cron runs it: stdout and stderr are not terminals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from snapshot_policy.output.logs import unstamped
from tests.e2e.cloud import unwrapped
from tests.e2e.policies import DB, NIGHTLY, WEB, policy_yaml
from tests.e2e.test_monitoring import monitored

ROOT = Path(__file__).parents[2]
WEB_LINE = "web: web-1 (digitalocean server 3164444)"
DB_LINE = "db: db-1 (hetzner server 4711)"


@pytest.fixture
def policy(tmp_path, sandbox, tokens):
    path = tmp_path / "policy.yaml"
    path.write_text(monitored({"url": sandbox.webhook_url("n8n")}, sandbox.webhook_url("hc")))
    return path


def apply(clock, policy: Path, *options: str) -> int:
    return main(["apply", "--policy", str(policy), *options], clock=clock)


def pings(sandbox) -> list[str]:
    return [d["name"] for d in sandbox.webhook_deliveries() if d["name"].startswith("hc")]


def test_a_run_with_nothing_due_prints_nothing_and_tells_nobody(policy, sandbox, capsys, clock):
    assert apply(clock, policy) == 0
    out, err = map(unstamped, capsys.readouterr())  # each line after its time (item 4)
    assert f"{WEB_LINE}: ok: created web-1-" in out and f"{DB_LINE}: waiting" in err
    sent = len(sandbox.telegram_messages()), len(sandbox.webhook_deliveries("n8n"))
    sandbox.clear_requests()
    assert apply(clock, policy) == 0
    assert capsys.readouterr() == ("", "")
    cloud_calls = sandbox.requests("digitalocean") + sandbox.requests("hetzner")
    assert cloud_calls and {r["method"] for r in cloud_calls} == {"GET"}
    assert (len(sandbox.telegram_messages()), len(sandbox.webhook_deliveries("n8n"))) == sent
    assert pings(sandbox) == ["hc/start", "hc", "hc/start", "hc"]  # monitoring still hears


def test_a_run_with_nothing_due_says_what_it_did_with_v(policy, sandbox, capsys, clock):
    assert apply(clock, policy) == 0
    capsys.readouterr()
    assert apply(clock, policy, "-v") == 0
    out, err = map(unstamped, capsys.readouterr())
    assert unwrapped(out) == (
        f"{DB_LINE}: ok: no new snapshot, deleted 0, 2 managed snapshot(s) remain\n"
        f"{WEB_LINE}: ok: no new snapshot, deleted 0, 3 managed snapshot(s) remain\n"
    )
    assert f"{WEB_LINE}: done\n" in err and f"{DB_LINE}: done\n" in err
    assert (
        "snapshot-policy apply: 2 target(s), 2 server(s), 0 created, 0 deleted, 0 failed in "
        in unwrapped(err)
    )


def test_a_run_where_one_target_acts_prints_every_target_as_before(
    tmp_path, sandbox, tokens, capsys, clock
):
    """Only web is due (db's schedule is weekly, its last snapshot a day old, and it keeps all
    it has): the run prints what it printed before, the target with nothing to do included."""
    path = tmp_path / "policy.yaml"
    idle_db = {**DB, "schedule": {"every": "7d"}, "retention": {"keep_last": 50}}
    path.write_text(policy_yaml(WEB, idle_db, settings={"lock_file": "run/lock"}))
    assert apply(clock, path) == 0
    out, err = map(unstamped, capsys.readouterr())
    db, web = unwrapped(out).splitlines()
    assert db.startswith(f"{DB_LINE}: ok: no new snapshot, deleted 0, ")
    assert web.startswith(f"{WEB_LINE}: ok: created web-1-{clock.now:%Y%m%d%H%M%S}, deleted 3, ")
    lines = unwrapped(err).splitlines()
    assert sorted(lines[:2]) == sorted([f"{WEB_LINE}: waiting", f"{DB_LINE}: waiting"])
    assert f"{DB_LINE}: done" in lines and f"{WEB_LINE}: creating" in lines
    assert lines.index(f"{WEB_LINE}: creating") < lines.index(f"{WEB_LINE}: done")
    assert lines[-1].startswith(
        "snapshot-policy apply: 2 target(s), 2 server(s), 1 created, 3 deleted, 0 failed"
    )


def test_a_failed_ping_in_a_run_with_nothing_due_is_printed(
    tmp_path, sandbox, tokens, capsys, clock
):
    path = tmp_path / "policy.yaml"
    path.write_text(monitored({"url": sandbox.webhook_url("n8n")}, sandbox.webhook_url("hc")))
    assert apply(clock, path) == 0
    capsys.readouterr()
    path.write_text(monitored({"url": sandbox.webhook_url("n8n")}, "http://127.0.0.1:1/hc"))
    assert apply(clock, path) == 0  # a failed notification never changes the exit code
    out, err = map(unstamped, capsys.readouterr())
    assert "no new snapshot" in out
    assert (
        unwrapped(err).splitlines()[-1].endswith("; 2 notification(s) failed")
    )  # start and success


def test_quiet_prints_nothing_for_a_run_that_succeeded(policy, sandbox, capsys, clock):
    assert apply(clock, policy, "--quiet") == 0
    assert capsys.readouterr() == ("", "")
    assert len(sandbox.telegram_messages()) == 2  # it acted and told people; it just said nothing
    assert pings(sandbox) == ["hc/start", "hc"]


def test_quiet_prints_the_failed_target_and_keeps_the_exit_code(policy, sandbox, capsys, clock):
    sandbox.inject("fail_action", service="hetzner")
    assert apply(clock, policy, "-q") == 2
    out, err = map(unstamped, capsys.readouterr())
    assert out == ""
    failed, summary = unwrapped(err).splitlines()
    assert failed.startswith(f"{DB_LINE}: FAILED: no new snapshot, deleted 0, ")
    assert "create_image action" in failed and "failed: Action failed" in failed
    assert summary.startswith(
        "snapshot-policy apply: 2 target(s), 2 server(s), 1 created, 3 deleted, 1 failed"
    )
    assert summary.endswith("(failed: db)")


def test_quiet_prints_every_target_that_failed_and_exits_1(policy, sandbox, capsys, clock):
    sandbox.inject("error", method="GET", status=403, count=None)
    assert apply(clock, policy, "--quiet") == 1
    out, err = map(unstamped, capsys.readouterr())
    assert out == ""
    *failed, summary = unwrapped(err).splitlines()
    assert sorted(line.split(": FAILED: ")[0] for line in failed) == ["db", "web"]
    assert summary.endswith("(failed: db, web)")


def test_quiet_prints_a_failed_notification(policy, sandbox, monkeypatch, capsys, clock):
    monkeypatch.setenv("TEST_BOT_TOKEN", "111111:not-a-bot-the-sandbox-knows-aaaaaaaaaaa")
    assert apply(clock, policy, "--quiet") == 0
    out, err = map(unstamped, capsys.readouterr())
    assert out == "" and unwrapped(err).splitlines() == [unwrapped(err).strip()]
    assert err.strip().endswith("; 2 notification(s) failed")


@pytest.mark.parametrize("other", ["-v", "--dry-run"])
def test_quiet_with_an_option_that_asks_for_more_is_a_usage_error(
    policy, sandbox, capsys, clock, other
):
    sandbox.clear_requests()
    assert apply(clock, policy, "--quiet", other) == 1
    assert f"--quiet prints only failures, and {other} asks for more" in capsys.readouterr().err
    assert sandbox.requests() == []


# --- as cron runs it: a process of its own, the wall clock, no terminal ---


def cron_line(folder: Path, *options: str) -> subprocess.CompletedProcess:
    """`cd FOLDER && snapshot-policy apply …` as /bin/sh runs a crontab line, output captured
    as cron captures it to mail."""
    command = f"cd {folder} && {sys.executable} -m snapshot_policy apply {' '.join(options)}"
    return subprocess.run(
        ["/bin/sh", "-c", command],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )


def test_a_plain_cron_line_mails_nothing_when_nothing_is_due(tmp_path, wall_clock_sandbox):
    (tmp_path / "snapshot-policy.yaml").write_text(
        policy_yaml(WEB, DB, defaults=NIGHTLY, settings={"lock_file": "run/lock"})
    )
    first = cron_line(tmp_path)
    assert first.returncode == 0, first.stderr
    assert b"ok: created web-1-" in first.stdout and b"snapshot-policy apply: " in first.stderr
    second = cron_line(tmp_path)
    assert (second.returncode, second.stdout, second.stderr) == (0, b"", b"")
    quiet = cron_line(tmp_path, "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, b"", b"")


def test_permission_warnings_are_one_line_per_file_within_100_columns(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    """Every file of the legacy layout holds a token and is 0644: one warning line each, on
    every run (--quiet too), each a command that fixes it."""
    monkeypatch.chdir(legacy_layout)
    server = legacy_layout / "configs" / "hetzner_cloud_server1.json"
    server.write_text(
        server.read_text().replace("https://hooks.example.com/snap", sandbox.webhook_url("old"))
    )
    files = ["snapshots.config", "configs/digitalocean_droplet1.json"]
    files.append("configs/hetzner_cloud_server1.json")
    for name in files:
        (legacy_layout / name).chmod(0o644)
    assert main(["apply", "--config", "snapshots.config", "--quiet"], clock=clock) == 0
    out, err = map(unstamped, capsys.readouterr())
    assert out == "" and len(err.splitlines()) == 3
    assert sorted(err.splitlines()) == sorted(
        f"warning: run chmod 600 {name} (it holds a secret, mode 0644)" for name in files
    )
    assert max(len(line) for line in err.splitlines()) <= 100
    for name in files:
        (legacy_layout / name).chmod(0o600)
    assert main(["apply", "--config", "snapshots.config", "--quiet"], clock=clock) == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("options", [(), ("-v",)])
def test_a_console_nobody_reads_costs_no_snapshot(tmp_path, wall_clock_sandbox, options):
    """The contrib cron line pipes apply into `logger`; where logger cannot write (no
    /dev/log, as in many containers) it exits, and every write to the pipe fails with EPIPE.
    The run goes on all the same: snapshots made, its log, report and exit code as ever
    (issue 21, review of item 4)."""
    (tmp_path / "snapshot-policy.yaml").write_text(
        policy_yaml(
            WEB,
            DB,
            defaults=NIGHTLY,
            settings={"lock_file": "run/lock", "log": {"file": "run/apply.log"}},
        )
    )

    def names() -> set[str]:
        return {s["name"] for s in wall_clock_sandbox.dump_state()["snapshots"]}

    before = names()
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "snapshot_policy", "apply", *options, "--report", "r.json"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL,
            stdout=writer,
            stderr=writer,
            timeout=120,
        )
    finally:
        os.close(writer)
    assert done.returncode == 0
    made = names() - before
    assert sorted(name.rsplit("-", 1)[0] for name in made) == ["db-1", "web-1"]
    report = json.loads((tmp_path / "r.json").read_text())
    assert {t["created"]["name"] for t in report["targets"]} == made
    assert "apply finished with exit code 0: " in (tmp_path / "run" / "apply.log").read_text()
