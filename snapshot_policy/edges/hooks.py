"""Consistency hooks: a command before a target's snapshot and one after it (issue 15).

A live snapshot is only crash-consistent; a database wants a flush or a freeze around it. The
`before` command runs just before the snapshot is started; if it fails or runs out of time,
no snapshot is made and nothing is deleted for the target. The `after` command runs once the
snapshot is finished or has failed — always, once `before` ran — so a freeze is always thawed.

Commands run without a shell (an argv list) unless the policy says `shell: true`, in a
minimal environment (`hook_environment`) with the target, server and snapshot in it: the
run's own environment holds the cloud and bot tokens, which a hook gets only by naming them
in its `env` list. Their output goes to the log, line by line (the log masks secrets).

A command still running at its timeout is killed with its whole process group: a hung
`before` must not hold the run. The timeout bounds the whole hook, reading its output
included, and a command that exited is judged by its exit status even when a child it left
behind still holds its output open (that child is neither waited for nor killed; one that
left the process group is out of reach anyway). Only the last `OUTPUT_KEPT` bytes of the
output are kept: a chatty hook must not fill the memory or rotate the log away.

`stop_all` kills every running hook's process group when the run is told to stop (a signal).
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping

from snapshot_policy.core.model import Hooks, Target

log = logging.getLogger(__name__)

# bytes of a hook's output kept for the log: the last ones, where errors are
OUTPUT_KEPT = 64 * 1024
# seconds to read on after the command exited: what it printed last, not what a child it left holds
READ_AFTER_EXIT = 0.5
LOOK_EVERY = 0.05  # seconds between looks at whether the command exited while its output is quiet


# and every LC_*: what a command needs to find programs and read text
PASSED_ON = ("PATH", "HOME", "LANG", "TZ")


def environment(
    target: Target, snapshot_name: str | None = None, status: str = ""
) -> dict[str, str]:
    """The variables that tell a hook what it runs for (a drill's probe: without a snapshot)."""
    variables = {
        "SNAPSHOT_POLICY_TARGET": target.name,
        "SNAPSHOT_POLICY_PROVIDER": target.provider,
        "SNAPSHOT_POLICY_SERVER_ID": target.server_id,
        "SNAPSHOT_POLICY_SERVER_NAME": target.server_name,
    }
    if snapshot_name is not None:
        variables["SNAPSHOT_POLICY_SNAPSHOT"] = snapshot_name
    if status:
        variables["SNAPSHOT_POLICY_STATUS"] = status  # after: "success" or "failure"
    return variables


def hook_environment(
    run_environment: Mapping[str, str], hooks: Hooks, variables: Mapping[str, str]
) -> dict[str, str]:
    """What a hook command sees: PASSED_ON and LC_* from the run's environment, the names its
    `env` lists (those set), and `variables`. Nothing else: the run's environment holds tokens."""
    wanted = {*PASSED_ON, *hooks.env}
    passed = {
        name: value
        for name, value in run_environment.items()
        if name in wanted or name.startswith("LC_")
    }
    return {**passed, **variables}


class _Running:
    """A hook command started by `run` and not yet done with; `stopped` once `stop_all` killed
    it."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.stopped = False


_running: set[_Running] = set()
# re-entrant: a signal handler may call stop_all in a thread holding it
_registry = threading.RLock()


def stop_all() -> None:
    """Kill the process group of every hook command still running: the run is stopping. Each
    `run` call waiting on one returns at once, saying its hook was stopped; later `run` calls
    run as usual (the `after` hooks of a stopping run)."""
    with _registry:
        for hook in list(_running):
            if hook.process.poll() is None:
                hook.stopped = True
                _kill_group(hook.process)


def run(
    which: str,
    hooks: Hooks,
    target: Target,
    variables: Mapping[str, str],
    name: str | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> str | None:
    """Run the `which` ("before" or "after") command of `hooks`; return None when it succeeded,
    else a sentence saying how it failed. `name` is what the log and that sentence call it
    (default "<which> hook"; a restore drill's "probe", run by the same rules)."""
    command = getattr(hooks, which)
    argv = ["sh", "-c", command] if hooks.shell else list(command)
    what = name or f"{which} hook"
    label = f"{target.name} ({target.server_name}): {what}"
    deadline = time.monotonic() + hooks.timeout
    try:
        # started and registered at once: stop_all sees every hook that started before it
        with _registry:
            if stopping():  # checked under the lock stop_all takes: none starts after it
                return f"{what} was not started: the run is stopping"
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=hook_environment(os.environ, hooks, variables),
                start_new_session=True,
            )
            hook = _Running(process)
            _running.add(hook)
    except OSError as error:
        return f"{what} could not start ({argv[0]}): {error.strerror or error}"
    output = _Tail()
    try:
        _read_until_done(hook, output, deadline)
        timed_out = process.poll() is None and not hook.stopped
    finally:
        if process.poll() is None:  # out of time, or an error here: it must not live on
            _kill_group(process)
        process.wait()  # the command itself is done; a child it left outside its group may live on
        with _registry:
            _running.discard(hook)
        process.stdout.close()
    output.log(label)
    if hook.stopped:
        return f"{what} was stopped (killed with its process group): the run is stopping"
    if timed_out:
        return f"{what} timed out after {hooks.timeout:g}s and was killed"
    if process.returncode != 0:
        return f"{what} failed (exit status {process.returncode})"
    log.info("%s: done", label)
    return None


def _read_until_done(hook: _Running, output: _Tail, deadline: float) -> None:
    """Read the command's output into `output` until it is closed and the command exited, or
    READ_AFTER_EXIT after the command exited (a child may hold it open for ever), or the
    deadline, or a stop; whichever comes first."""
    process = hook.process
    pipe = process.stdout.fileno()
    os.set_blocking(pipe, False)
    exited_at = None
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        while not hook.stopped:
            now = time.monotonic()
            if exited_at is None and process.poll() is not None:
                exited_at = now
            end = deadline if exited_at is None else min(deadline, exited_at + READ_AFTER_EXIT)
            if now >= end:
                return
            if not selector.select(min(end - now, LOOK_EVERY)):
                continue
            try:
                chunk = os.read(pipe, OUTPUT_KEPT)
            except BlockingIOError:
                continue
            if not chunk:  # every writer closed it: only the exit is left to wait for
                break
            output.add(chunk)
    try:
        process.wait(max(0.0, deadline - time.monotonic()))  # a stop kills it, so this ends too
    except subprocess.TimeoutExpired:
        pass


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:  # no process left in the group
        pass


class _Tail:
    """The last OUTPUT_KEPT bytes of a command's output, and how many came before them."""

    def __init__(self) -> None:
        self.kept = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        self.kept += chunk
        excess = len(self.kept) - OUTPUT_KEPT
        if excess > 0:
            del self.kept[:excess]
            self.dropped += excess

    def log(self, label: str) -> None:
        if self.dropped:
            log.info(
                "%s: output truncated: %d bytes dropped, the last %d follow",
                label,
                self.dropped,
                len(self.kept),
            )
        for line in self.kept.decode(errors="replace").splitlines():
            log.info("%s: %s", label, line)
