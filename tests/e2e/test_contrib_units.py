"""contrib/: the systemd units and the cron.d example are valid, and their command lines are
ones the real CLI accepts, so the README's scheduling section cannot rot unnoticed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from snapshot_policy.cli import cli, main

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
SERVICE = CONTRIB / "systemd" / "snapshot-policy.service"
TIMER = CONTRIB / "systemd" / "snapshot-policy.timer"
CRON = CONTRIB / "cron" / "snapshot-policy"


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and keys; a key may repeat, as systemd allows."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def exec_start() -> list[str]:
    [command] = unit_settings(SERVICE)["Service"]["ExecStart"]
    return shlex.split(command)


def cron_command() -> list[str]:
    """The snapshot-policy invocation in the cron line, up to its output redirection."""
    [line] = [line for line in CRON.read_text(encoding="utf-8").splitlines() if re.match(r"^[\d*]", line)]
    words = shlex.split(line)
    start = next(i for i, word in enumerate(words) if word.endswith("/snapshot-policy") and words[i + 1] == "apply")
    end = words.index("2>&1", start)
    return words[start:end]


def assert_the_cli_accepts(argv: list[str], capsys) -> None:
    program, command, *options = argv
    assert Path(program).name == "snapshot-policy"
    # Every option must exist: an unknown one fails parsing even with --help.
    assert main([command, *options, "--help"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    context = cli.commands[command].make_context(command, list(options))
    assert str(context.params["policy"]) == "/etc/snapshot-policy/snapshot-policy.yaml"
    assert str(context.params["metrics_file"]).endswith(".prom")


def test_service_runs_apply_with_options_the_cli_accepts(capsys):
    assert_the_cli_accepts(exec_start(), capsys)


def test_cron_line_runs_apply_with_options_the_cli_accepts(capsys):
    assert_the_cli_accepts(cron_command(), capsys)


def test_cron_line_is_hourly_under_a_lock_and_logged():
    [line] = [line for line in CRON.read_text(encoding="utf-8").splitlines() if re.match(r"^[\d*]", line)]
    minute, hour, day, month, weekday, user, command = line.split(None, 6)
    assert minute.isdigit() and (hour, day, month, weekday) == ("*", "*", "*", "*")
    assert user == "snapshot-policy"
    assert "flock -n " in command and "| logger -t snapshot-policy" in command
    assert "%" not in command  # cron turns % into a newline


def test_service_and_timer_settings():
    service, timer = unit_settings(SERVICE), unit_settings(TIMER)
    assert service["Service"]["Type"] == ["oneshot"]
    assert service["Service"]["EnvironmentFile"] == ["-/etc/snapshot-policy/environment"]
    assert service["Service"]["ProtectSystem"] == ["strict"]
    assert timer["Timer"]["OnCalendar"] == ["hourly"]
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Timer"]["RandomizedDelaySec"] == ["5min"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]


def usable_systemd_analyze(folder: Path) -> str | None:
    """Why `systemd-analyze verify` cannot be used here, or None when it can."""
    if shutil.which("systemd-analyze") is None:
        return "systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)"
    probe = folder / "probe.service"
    probe.write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    result = subprocess.run(["systemd-analyze", "verify", str(probe)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0 or result.stderr.strip():
        return f"systemd-analyze verify does not work here (a trivial unit fails): {result.stderr.strip()[:300]}"
    probe.unlink()
    return None


def test_units_pass_systemd_analyze_verify(tmp_path):
    reason = usable_systemd_analyze(tmp_path)
    if reason:
        pytest.skip(reason)
    # verify insists that ExecStart's program exists: stand one in for the installed script.
    program = tmp_path / "bin" / "snapshot-policy"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    service = SERVICE.read_text(encoding="utf-8").replace(exec_start()[0], str(program))
    (tmp_path / SERVICE.name).write_text(service, encoding="utf-8")
    shutil.copy(TIMER, tmp_path / TIMER.name)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / SERVICE.name), str(tmp_path / TIMER.name)],
        capture_output=True, text=True, timeout=60,
    )
    # A bad value is only a warning (exit 0), so any message about our units fails the test.
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "snapshot-policy" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr
