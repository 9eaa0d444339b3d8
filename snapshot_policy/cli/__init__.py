"""The command line (`snapshot-policy`): `app` holds the group and `main`; importing the
command modules registers their commands on it."""

from snapshot_policy.cli import (  # noqa: F401 (registers them)
    cloud_commands,
    local_commands,
    recovery_commands,
    snapshot_commands,
    status_command,
)
from snapshot_policy.cli.app import cli, console, main, system_clock

__all__ = ["cli", "console", "main", "system_clock"]
