"""`migrate --out` keeps a policy someone may have edited, and its refusals name options migrate
takes (issue 21, item 8)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from snapshot_policy.cli.app import cli
from tests.e2e.cloud import DO_TOKEN

EDITED = "# my edits: keep web on a weekly schedule\nversion: 1\n"
MIGRATED = "# snapshot-policy policy, migrated"
README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def migrate_options() -> set[str]:
    command = cli.commands["migrate"]
    return {opt for param in command.params for opt in param.opts if opt.startswith("--")}


def named_options(message: str) -> set[str]:
    return set(re.findall(r"(?<![\w`-])--[a-z][a-z-]*", message))


def test_an_existing_policy_is_kept_unless_force(legacy_layout, monkeypatch, capsys, clock):
    monkeypatch.chdir(legacy_layout)
    mine = legacy_layout / "mine.yaml"
    mine.write_text(EDITED)
    assert main(["migrate", "--out", "mine.yaml"], clock=clock) == 1
    out, err = capsys.readouterr()
    assert mine.read_text() == EDITED and out == ""
    assert (
        "Nothing migrated: mine.yaml exists and may hold your edits; "
        "give --force to replace it, or --out another file to compare."
    ) in err
    assert "Wrote" not in err and "export" not in err
    assert main(["migrate", "--out", "mine.yaml", "--force"], clock=clock) == 0
    assert "Wrote mine.yaml: 2 target(s)." in capsys.readouterr().err
    text = mine.read_text()
    assert text.startswith(MIGRATED) and DO_TOKEN not in text
    assert stat.S_IMODE(mine.stat().st_mode) == 0o600


@pytest.mark.parametrize("left", ["", "\n  \n"])
def test_an_empty_file_as_the_shell_leaves_it_is_replaced_without_force(
    legacy_layout, monkeypatch, capsys, clock, left
):
    monkeypatch.chdir(legacy_layout)
    (legacy_layout / "new.yaml").write_text(left)
    assert main(["migrate", "--out", "new.yaml"], clock=clock) == 0
    assert (legacy_layout / "new.yaml").read_text().startswith(MIGRATED)


def test_a_folder_with_both_formats_names_the_options_migrate_takes(
    legacy_layout, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    policy = legacy_layout / "snapshot-policy.yaml"
    policy.write_text(EDITED)
    assert main(["migrate", "--out", "snapshot-policy.yaml"], clock=clock) == 1
    out, err = capsys.readouterr()
    assert out == "" and policy.read_text() == EDITED
    assert (
        "both snapshot-policy.yaml and snapshots.config are here, and migrate reads only the "
        "snapshots.py layout: give --config snapshots.config, and --force to replace "
        "snapshot-policy.yaml (edits made to it are lost) or --out another file"
    ) in err, err
    refusal = err.split("Error: ", 1)[1]
    assert named_options(refusal) == {"--config", "--force", "--out"} <= migrate_options()
    assert "--policy" not in refusal
    # Doing what it says works, and only then is the edited policy replaced.
    assert (
        main(["migrate", "--config", "snapshots.config", "--out", "another.yaml"], clock=clock) == 0
    )
    assert policy.read_text() == EDITED
    argv = ["migrate", "--config", "snapshots.config", "--out", "snapshot-policy.yaml", "--force"]
    assert f"\nsnapshot-policy {' '.join(argv)}\n" in README  # the command the README gives
    assert main(argv, clock=clock) == 0
    assert policy.read_text().startswith(MIGRATED)


def test_migrate_printing_in_a_folder_with_both_formats_names_config(
    legacy_layout, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    (legacy_layout / "snapshot-policy.yaml").write_text(EDITED)
    assert main(["migrate"], clock=clock) == 1
    err = capsys.readouterr().err
    refusal = err.split("Error: ", 1)[1]
    assert refusal.strip().endswith("give --config snapshots.config")
    assert named_options(refusal) == {"--config"}
    assert main(["migrate", "--config", "snapshots.config"], clock=clock) == 0
    assert capsys.readouterr().out.startswith(MIGRATED)


def test_the_empty_policy_a_shell_redirection_left_gets_the_whole_command(
    legacy_layout, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    policy = legacy_layout / "snapshot-policy.yaml"
    policy.write_text("")
    assert main(["migrate"], clock=clock) == 1
    refusal = capsys.readouterr().err.split("Error: ", 1)[1]
    assert (
        "give --config snapshots.config and --out snapshot-policy.yaml (snapshot-policy.yaml is "
        "empty, as `migrate > snapshot-policy.yaml` leaves it: --out replaces it)"
    ) in refusal
    assert named_options(refusal) <= migrate_options()
    argv = ["migrate", "--config", "snapshots.config", "--out", "snapshot-policy.yaml"]
    assert main(argv, clock=clock) == 0
    assert policy.read_text().startswith(MIGRATED)


def test_server_files_without_snapshots_config_are_named_as_arguments(
    legacy_layout, monkeypatch, capsys, clock
):
    (legacy_layout / "snapshots.config").unlink()
    (legacy_layout / "snapshot-policy.yaml").write_text(EDITED)
    monkeypatch.chdir(legacy_layout)
    assert main(["migrate", "--out", "snapshot-policy.yaml"], clock=clock) == 1
    refusal = capsys.readouterr().err.split("Error: ", 1)[1]
    assert "give the server files as arguments (configs/*.json), and --force" in refusal
    files = ["configs/digitalocean_droplet1.json", "configs/hetzner_cloud_server1.json"]
    assert main(["migrate", *files, "--out", "snapshot-policy.yaml", "--force"], clock=clock) == 0
    assert (legacy_layout / "snapshot-policy.yaml").read_text().startswith(MIGRATED)


def test_migrate_given_a_policy_names_the_option_for_a_legacy_layout(
    legacy_layout, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    (legacy_layout / "other.yaml").write_text(EDITED)
    assert main(["migrate", "--policy", "other.yaml"], clock=clock) == 1
    refusal = capsys.readouterr().err.split("Error: ", 1)[1]
    assert "this is a YAML policy already: give --config snapshots.config" in refusal
    assert named_options(refusal) <= migrate_options()


def test_force_without_out_is_a_usage_error(legacy_layout, monkeypatch, capsys, clock):
    monkeypatch.chdir(legacy_layout)
    assert main(["migrate", "--force"], clock=clock) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Error: --force replaces the --out FILE: give --out FILE too" in err
