"""The warning about a config file others may read is one line per file of at most 100
columns, naming the file and the command that fixes it (issue 21, item 9): printed on every
run, it is what cron mails."""

from __future__ import annotations

import os

import pytest

from snapshot_policy.config.secrets import WARNING_COLUMNS, permission_warning, unprotected

TOKEN = "dop_v1_" + "PERMtoken" + "5c" * 28
NAMES = [
    "snapshots.config",
    "configs/digitalocean_droplet1.json",
    "/etc/snapshot-policy/snapshot-policy.yaml",
    "/opt/snapshots/configs/digitalocean_droplet1.json",
    "/srv/" + "deeply/nested/" * 8 + "configs/hetzner_cloud_server1.json",
    "/x/" + "n" * 150 + ".json",
    "my configs/web server.json",
    "configs/evil\nwarning: all is well.json",
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_one_line_within_100_columns_naming_the_file_and_the_fix(name, mode):
    warning = permission_warning(name, mode)
    assert "\n" not in warning and len(warning) <= WARNING_COLUMNS == 100
    assert warning.startswith("warning: run chmod 600 ")
    assert warning.endswith(f" (it holds a secret, mode {mode:04o})")
    base = os.path.basename(name).replace("\n", "\\n")
    if len(base) < 40:
        assert base in warning  # the file's own name, whole, even in a shortened path


def test_a_path_that_fits_is_the_command_to_run():
    assert permission_warning("/etc/snapshot-policy/snapshot-policy.yaml", 0o640) == (
        "warning: run chmod 600 /etc/snapshot-policy/snapshot-policy.yaml "
        "(it holds a secret, mode 0640)"
    )
    assert permission_warning("my configs/web server.json", 0o644) == (
        "warning: run chmod 600 'my configs/web server.json' (it holds a secret, mode 0644)"
    )


def test_a_long_path_is_shortened_in_its_middle_keeping_its_start_and_name():
    warning = permission_warning("/opt/snapshots/configs/digitalocean_droplet1.json", 0o644)
    assert warning == (
        "warning: run chmod 600 /opt/snapshots/con…/digitalocean_droplet1.json "
        "(it holds a secret, mode 0644)"
    )


def test_a_long_absolute_path_is_named_relative_to_the_current_folder(tmp_path, monkeypatch):
    folder = tmp_path / ("a-rather-long-folder-name-" * 3) / "configs"
    folder.mkdir(parents=True)
    server = folder / "digitalocean_droplet1.json"
    server.write_text(f'{{"api_token": "{TOKEN}"}}')
    server.chmod(0o644)
    monkeypatch.chdir(folder.parent)
    [warning] = unprotected([server], [TOKEN])
    assert warning == (
        "warning: run chmod 600 configs/digitalocean_droplet1.json (it holds a secret, mode 0644)"
    )
    assert TOKEN not in warning
