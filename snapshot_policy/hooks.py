"""Consistency hooks: a command before a target's snapshot and one after it (issue 15).

A live snapshot is only crash-consistent; a database wants a flush or a freeze around it. The
`before` command runs just before the snapshot is started; if it fails or runs out of time,
no snapshot is made and nothing is deleted for the target. The `after` command runs once the
snapshot is finished or has failed — always, once `before` ran — so a freeze is always thawed.

Commands run without a shell (an argv list) unless the policy says `shell: true`, with the
target, server and snapshot in the environment. Their output goes to the log, line by line
(the log masks secrets). A command still running at its timeout is killed with its whole
process group: a hung `before` must not hold the run.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping

from snapshot_policy.model import Hooks, Target

log = logging.getLogger(__name__)


def environment(target: Target, snapshot_name: str, status: str = "") -> dict[str, str]:
    """The variables a hook sees besides the run's own environment."""
    variables = {
        "SNAPSHOT_POLICY_TARGET": target.name,
        "SNAPSHOT_POLICY_PROVIDER": target.provider,
        "SNAPSHOT_POLICY_SERVER_ID": target.server_id,
        "SNAPSHOT_POLICY_SERVER_NAME": target.server_name,
        "SNAPSHOT_POLICY_SNAPSHOT": snapshot_name,
    }
    if status:
        variables["SNAPSHOT_POLICY_STATUS"] = status  # after: "success" or "failure"
    return variables


def run(which: str, hooks: Hooks, target: Target, variables: Mapping[str, str]) -> str | None:
    """Run the `which` ("before" or "after") command of `hooks`; return None when it succeeded,
    else a sentence saying how it failed."""
    command = getattr(hooks, which)
    argv = ["sh", "-c", command] if hooks.shell else list(command)
    label = f"{target.name} ({target.server_name}): {which} hook"
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, **variables}, start_new_session=True, text=True, errors="replace",
        )
    except OSError as error:
        return f"{which} hook could not start ({argv[0]}): {error.strerror or error}"
    try:
        output, _ = process.communicate(timeout=hooks.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        _log_output(label, output)
        return f"{which} hook timed out after {hooks.timeout:g}s and was killed"
    _log_output(label, output)
    if process.returncode != 0:
        return f"{which} hook failed (exit status {process.returncode})"
    log.info("%s: done", label)
    return None


def _log_output(label: str, output: str) -> None:
    for line in output.splitlines():
        log.info("%s: %s", label, line)
