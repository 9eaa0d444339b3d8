"""Allow `python -m snapshot_policy`."""

from snapshot_policy.cli import console

console()
