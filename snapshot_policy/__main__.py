"""Allow `python -m snapshot_policy`."""

from snapshot_policy.cli import run

run()
