"""The lines operators grep (issue 21, item 4) and a report that survives quiet runs (item 10),
against the sandbox through the real SDKs, as cron runs apply (stdout and stderr are not
terminals): every printed line after its local time; a legacy layout's snapshots.log with
snapshots.py's session header, FINAL_STATUS and SUMMARY lines, and its cronjob.log lines on
stderr; a policy's log with a line at each end of every run."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from snapshot_policy.cli import main
from snapshot_policy.cli.app import selection
from tests.e2e.cloud import unwrapped
from tests.e2e.policies import DB, NIGHTLY, WEB, policy_yaml
from tests.e2e.test_monitoring import monitored

STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] "
LOG_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


@pytest.fixture(autouse=True)
def host_in_berlin(host_zone):
    """snapshots.py wrote local times; a host off UTC shows the lines do too."""
    host_zone("Europe/Berlin")


def local(clock, layout: str = "[%Y-%m-%d %H:%M:%S]") -> str:
    return clock.now.astimezone().strftime(layout)


def private(layout: Path) -> None:
    """The files with secrets made 0600, so no permission warning joins the lines."""
    for path in [layout / "snapshots.config", *(layout / "configs").glob("*.json")]:
        path.chmod(0o600)


def every_line_stamped(text: str, clock) -> list[str]:
    """The lines of `text` without their stamps, each checked to start with the run's time."""
    lines = text.splitlines()
    assert lines and all(line.startswith(local(clock) + " ") for line in lines), text
    return unwrapped("\n".join(line[len(local(clock)) + 1 :] for line in lines)).splitlines()


def test_a_legacy_run_writes_the_old_scripts_log_and_cronjob_lines(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    private(legacy_layout)
    assert main(["apply"], clock=clock) == 0
    out, err = capsys.readouterr()
    results = every_line_stamped(out, clock)
    assert len(results) == 2 and all(": ok: created " in line for line in results)
    said = every_line_stamped(err, clock)
    assert said[:3] == [
        "Starting snapshot management script...",
        f"Lock acquired successfully (PID: {os.getpid()})",
        "Found 2 configuration file(s).",
    ]
    assert said[-2:] == [
        "SUMMARY: 2 succeeded, 0 failed out of 2 total",
        "Script completed successfully.",
    ]
    assert said[-3].startswith("snapshot-policy apply: 2 target(s), 2 server(s), 2 created")

    log = (legacy_layout / "logs" / "snapshots.log").read_text().splitlines()
    assert all(re.match(rf"{LOG_TIME} \| [A-Z]+ +\| ", line) for line in log), log
    messages = [line.split(" | ", 2)[2] for line in log]
    start = messages.index("SNAPSHOT MANAGEMENT SESSION STARTED")
    assert messages[start - 1 : start + 5] == [
        "=" * 80,
        "SNAPSHOT MANAGEMENT SESSION STARTED",
        f"Timestamp: {local(clock, '%Y-%m-%d %H:%M:%S')}",
        f"Hostname: {socket.gethostname()}",
        "Total servers configured: 2",
        "=" * 80,
    ]
    finals = [line for line in log if "| FINAL_STATUS |" in line]
    by_server = {line.split(" | ")[5]: line for line in finals}
    made = {
        m["text"].split("`")[1]: m["text"].split("`")[3] for m in sandbox.telegram_messages()
    }  # "*OK* `web-1`\nsnapshot `web-1-…`\n…": the snapshot names the servers' messages gave
    for provider, server in (("digitalocean", "web-1"), ("hetzner", "db-1")):
        assert re.fullmatch(
            rf"{LOG_TIME} \| INFO     \| FINAL_STATUS \| snapshots\.py \| {provider} \| "
            rf"{server} \| SUCCESS \| {re.escape(socket.gethostname())} \| "
            rf"{re.escape(local(clock, '%Y-%m-%d %H:%M:%S'))} \| {re.escape(made[server])} \| "
            r"\d+ snapshots exist",
            by_server[server],
        ), by_server[server]
    assert messages[-3:] == ["=" * 80, "SUMMARY: 2 succeeded, 0 failed out of 2 total", "=" * 80]
    assert log.index(finals[-1]) < len(log) - 3  # each server's status, then the summary


def test_a_legacy_run_with_a_failed_server_says_so_in_the_old_words(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    private(legacy_layout)
    sandbox.inject("fail_action", service="hetzner")
    assert main(["apply"], clock=clock) == 2
    said = every_line_stamped(capsys.readouterr().err, clock)
    assert said[-2:] == [
        "SUMMARY: 1 succeeded, 1 failed out of 2 total",
        "WARNING: Partial failure: 1 server(s) failed",
    ]  # and no "Script completed successfully.", as snapshots.py exited 2 before it
    log = (legacy_layout / "logs" / "snapshots.log").read_text()
    assert re.search(
        r"\| INFO     \| FINAL_STATUS \| snapshots\.py \| hetzner \| db-1 \| FAILURE \| .+ \| "
        r"none \| \d+ snapshots exist\n",
        log,
    )
    assert "| INFO     | FINAL_STATUS | snapshots.py | digitalocean | web-1 | SUCCESS |" in log
    assert log.endswith(
        "| INFO     | SUMMARY: 1 succeeded, 1 failed out of 2 total\n"
        f"{log.splitlines()[-2][:19]} | INFO     | {'=' * 80}\n"
        f"{log.splitlines()[-1][:19]} | WARNING  | Partial failure: 1 server(s) failed\n"
    )


def test_every_policy_run_is_marked_in_the_log_and_a_quiet_run_stays_silent(
    tmp_path, sandbox, tokens, capsys, clock
):
    policy = tmp_path / "policy.yaml"
    settings = {"lock_file": "run/lock", "log": {"file": "run/apply.log"}}
    policy.write_text(policy_yaml(WEB, DB, defaults=NIGHTLY, settings=settings))
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    out, err = capsys.readouterr()
    every_line_stamped(out, clock)
    progress = every_line_stamped(err, clock)
    assert "web: web-1 (digitalocean server 3164444): creating" in progress
    assert progress[-1].startswith("snapshot-policy apply: 2 target(s), 2 server(s), 2 created")
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    assert capsys.readouterr() == ("", "")  # nothing due: the stamps add no line
    lines = [
        line.split(" ", 2)[2]  # after the UTC time and the level
        for line in (tmp_path / "run" / "apply.log").read_text().splitlines()
        if " apply started on " in line or " apply finished " in line
    ]
    host = socket.gethostname()
    assert lines[0] == f"apply started on {host}: 2 target(s)"
    assert lines[1].startswith("apply finished with exit code 0: snapshot-policy apply: ")
    assert " 2 created" in lines[1]
    assert lines[2] == lines[0]
    assert lines[3].startswith("apply finished with exit code 0: snapshot-policy apply: ")
    assert " 0 created, 0 deleted, 0 failed" in lines[3]
    assert len(lines) == 4


def test_a_run_with_nothing_to_tell_leaves_the_last_report_alone(
    tmp_path, sandbox, tokens, capsys, clock
):
    policy = tmp_path / "policy.yaml"
    policy.write_text(monitored({"url": sandbox.webhook_url("n8n")}, sandbox.webhook_url("hc")))
    report = tmp_path / "last-run.json"

    def apply() -> dict:
        assert main(["apply", "--policy", str(policy), "--report", str(report)], clock=clock) == 0
        capsys.readouterr()
        return json.loads(report.read_text())

    night = apply()
    assert sum(t["created"] is not None for t in night["targets"]) == 2
    clock.advance(hours=1)
    assert apply() == night  # 04:00 did nothing: 03:00's report is still there
    clock.advance(days=1)
    assert apply() != night  # a run that acts writes its own


def test_a_run_with_nothing_to_tell_writes_a_report_where_there_is_none(
    tmp_path, sandbox, tokens, capsys, clock
):
    policy = tmp_path / "policy.yaml"
    policy.write_text(monitored({"url": sandbox.webhook_url("n8n")}, sandbox.webhook_url("hc")))
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    report = tmp_path / "last-run.json"
    assert main(["apply", "--policy", str(policy), "--report", str(report)], clock=clock) == 0
    assert json.loads(report.read_text())  # monitoring that expects the file finds one


def test_a_legacy_run_whose_deletions_failed_counts_as_its_final_status_lines_say(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    """db-1's snapshot is made but the cloud refuses its deletions: its FINAL_STATUS says
    SUCCESS, as snapshots.py's did, so the SUMMARY counts it a success too; the run exits 2 and
    does not say it completed successfully (issue 21, review of item 4)."""
    monkeypatch.chdir(legacy_layout)
    server = legacy_layout / "configs" / "hetzner_cloud_server1.json"
    document = json.loads(server.read_text())
    document["hetzner_cloud_server"]["retain_last_snapshots"] = 1
    server.write_text(json.dumps(document))
    private(legacy_layout)
    sandbox.inject("error", service="hetzner", method="DELETE", status=403, count=None)
    assert main(["apply"], clock=clock) == 2
    said = every_line_stamped(capsys.readouterr().err, clock)
    assert said[-1] == "SUMMARY: 2 succeeded, 0 failed out of 2 total"
    log = (legacy_layout / "logs" / "snapshots.log").read_text()
    finals = re.findall(r"\| FINAL_STATUS \| snapshots\.py \| \w+ \| ([\w-]+) \| (\w+) \|", log)
    assert sorted(finals) == [("db-1", "SUCCESS"), ("web-1", "SUCCESS")]
    assert log.splitlines()[-2].endswith(
        "| INFO     | SUMMARY: 2 succeeded, 0 failed out of 2 total"
    )
    assert "Partial failure" not in log and "All servers failed" not in log


def test_a_legacy_run_that_exits_2_does_not_say_it_completed_successfully(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    """Every snapshot is made, but the run state cannot be written (a full or read-only disk):
    the run exits 2, and snapshots.py's `Script completed successfully.`, which it printed only
    before exiting 0, is not said (issue 21, review of item 4)."""
    from snapshot_policy.state.runstate import RunState

    def full_disk(self) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunState, "save", full_disk)
    monkeypatch.chdir(legacy_layout)
    private(legacy_layout)
    assert main(["apply"], clock=clock) == 2
    said = every_line_stamped(capsys.readouterr().err, clock)
    assert "could not write the run state: [Errno 28] No space left on device" in "\n".join(said)
    assert said[-1] == "SUMMARY: 2 succeeded, 0 failed out of 2 total"
    assert "Script completed successfully." not in said
    assert len(sandbox.dump_state()["snapshots"]) > 0


def test_the_console_log_and_apply_s_errors_are_timed_under_cron(
    tmp_path, sandbox, tokens, capsys, clock
):
    """`-v` puts the log on the console; under cron each of its lines starts with the run's
    local time like every other line apply prints, and so does a refused file's error (issue
    21, review of item 4)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_yaml(WEB, DB, defaults=NIGHTLY, settings={"lock_file": "run/lock"}))
    assert main(["apply", "-v", "--policy", str(policy)], clock=clock) == 0
    out, err = capsys.readouterr()
    every_line_stamped(out, clock)
    said = every_line_stamped(err, clock)
    assert f"INFO apply started on {socket.gethostname()}: 2 target(s)" in said
    assert any(line.startswith("INFO apply finished with exit code 0: ") for line in said)

    link = tmp_path / "replink.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    assert main(["apply", "--policy", str(policy), "--report", str(link)], clock=clock) == 1
    out, err = capsys.readouterr()
    assert out == ""
    (said,) = every_line_stamped(err, clock)
    assert said.startswith(f"cannot use --report {link}: ")


def test_a_command_asks_for_timed_warnings_by_a_flag_not_by_its_name(
    legacy_layout, monkeypatch, clock
):
    """`selection(timed=True)` times the configuration's warnings under cron whatever the
    command's function is called; a plain `@selection` does not (issue 21, review of item 4)."""
    monkeypatch.chdir(legacy_layout)
    private(legacy_layout)
    (legacy_layout / "snapshots.config").chmod(0o644)  # holds a token: one warning line

    @click.group()
    def group() -> None:
        pass

    @group.command("timed")
    @selection(timed=True)
    def renamed(loaded, verbose: bool, whole: bool) -> None:
        pass

    @group.command("plain")
    @selection
    def plain(loaded, verbose: bool, whole: bool) -> None:
        pass

    warning = "warning: run chmod 600 snapshots.config (it holds a secret, mode 0644)\n"
    runner = CliRunner()
    timed = runner.invoke(group, ["timed"], obj=clock)
    assert (timed.exit_code, timed.stderr) == (0, f"{local(clock)} {warning}")
    untimed = runner.invoke(group, ["plain"], obj=clock)
    assert (untimed.exit_code, untimed.stderr) == (0, warning)
