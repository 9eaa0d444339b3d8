"""The command line, in-process through `main` and once as the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from snapshot_policy.cli import main


def test_simulate_prints_a_timeline_and_the_survivors(capsys):
    code = main(
        [
            "simulate",
            "--keep-daily",
            "7",
            "--keep-weekly",
            "4",
            "--days",
            "60",
            "--start",
            "2026-01-01T03:00:00Z",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(
        "Simulated 60 day(s) from 2026-01-01 03:00 UTC, 1 run(s) a day:\n"
        "60 snapshots made, 50 deleted, 10 survive."
    )
    assert "  2026-02  " in out and "  2026-03  " in out
    assert "  2026-03-01 03:00  daily, weekly" in out


def test_simulate_json_lists_survivors_oldest_first(capsys):
    code = main(
        [
            "simulate",
            "--keep-last",
            "2",
            "--days",
            "3",
            "--start",
            "2026-01-01T00:00:00Z",
            "--output",
            "json",
        ]
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["survivors"] == ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]
    assert (document["created"], document["deleted"]) == (3, 1)


def test_simulate_reads_keep_within_and_a_time_zone(capsys):
    code = main(
        [
            "simulate",
            "--keep-within",
            "2d",
            "--timezone",
            "Europe/Berlin",
            "--days",
            "5",
            "--runs-per-day",
            "2",
            "--start",
            "2026-01-01T00:00:00+01:00",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Policy: keep_within 2d (timezone Europe/Berlin)." in out
    assert out.startswith("Simulated 5 day(s) from 2026-01-01 00:00 CET")
    assert out.count("  within 2d\n") == 4


def test_usage_errors_exit_1_with_a_message(capsys):
    assert main(["simulate"]) == 1
    assert "give at least one retention rule" in capsys.readouterr().err
    assert main(["simulate", "--keep-last", "-1"]) == 1
    assert main(["simulate", "--keep-daily", "1", "--timezone", "Mars/Olympus"]) == 1
    assert "not an IANA time zone" in capsys.readouterr().err
    assert main(["simulate", "--keep-daily", "1", "--keep-within", "soon"]) == 1
    assert "is not a duration" in capsys.readouterr().err
    assert main(["simulate", "--keep-daily", "1", "--start", "yesterday"]) == 1
    assert "not an ISO-8601 time" in capsys.readouterr().err
    assert main(["no-such-command"]) == 1


def test_installed_console_script_and_module_both_run():
    script = Path(sys.executable).parent / "snapshot-policy"
    for command in ([str(script)], [sys.executable, "-m", "snapshot_policy"]):
        done = subprocess.run(
            command + ["simulate", "--keep-last", "1", "--days", "2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "2 snapshots made, 1 deleted, 1 survive." in done.stdout


def test_simulate_takes_the_retention_and_zone_of_a_policy_target_without_its_secrets(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("HCLOUD_TOKEN", raising=False)
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\ntimezone: Europe/Berlin\naccounts:\n"
        "  hz: {provider: hetzner, token: env:NOT_SET_ANYWHERE}\n"
        "targets:\n  - {name: web, account: hz, names: [web-1], retention: {keep_daily: 3}}\n"
        "  - {name: db, account: hz, names: [db-1], retention: {keep_last: 2}}\n"
    )
    assert (
        main(
            [
                "simulate",
                "--policy",
                str(policy),
                "--target",
                "web",
                "--days",
                "10",
                "--start",
                "2026-01-01T00:00:00Z",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "Policy: keep_daily 3 (timezone Europe/Berlin)." in out
        and "10 snapshots made, 7 deleted, 3 survive." in out
    )
    assert main(["simulate", "--policy", str(policy)]) == 1
    assert "choose one with --target: web, db" in capsys.readouterr().err
    assert main(["simulate", "--policy", str(policy), "--target", "web", "--keep-last", "2"]) == 1


def test_completion_scripts_complete_commands_and_options(capsys, monkeypatch):
    assert main(["completion", "bash"]) == 0
    assert "_SNAPSHOT_POLICY_COMPLETE=bash_complete" in capsys.readouterr().out
    script = Path(sys.executable).parent / "snapshot-policy"
    env = {
        "_SNAPSHOT_POLICY_COMPLETE": "bash_complete",
        "COMP_WORDS": "snapshot-policy ap",
        "COMP_CWORD": "1",
    }
    done = subprocess.run(
        [str(script)], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert "plain,apply" in done.stdout


def test_every_command_has_help_with_an_example(capsys):
    for command in ("plan", "apply", "validate", "migrate", "simulate", "sandbox", "completion"):
        assert main([command, "--help"]) == 0
        assert "Example" in capsys.readouterr().out, command


def test_simulate_chart_writes_an_svg_and_refuses_other_formats(tmp_path, capsys):
    chart = tmp_path / "survivors.svg"
    assert (
        main(
            [
                "simulate",
                "--keep-daily",
                "7",
                "--keep-weekly",
                "4",
                "--days",
                "60",
                "--chart",
                str(chart),
            ]
        )
        == 0
    )
    root = ElementTree.fromstring(chart.read_text())
    assert root.tag.endswith("svg")
    assert main(["simulate", "--keep-daily", "7", "--chart", str(tmp_path / "x.png")]) == 1
    assert "--chart draws SVG only" in capsys.readouterr().err


def test_demo_runs_offline_and_leaves_the_environment_alone(capsys):
    before = dict(os.environ)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "0 to create, 0 to delete" in out
    assert dict(os.environ) == before
