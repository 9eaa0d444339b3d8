"""Hook commands as real subprocesses (issue 19, items 5, 6 and 13): a stop kills them, a
timeout bounds them whole, a child left behind does not hold the run, output is capped, and
the environment is a minimal one.

Children that outlive their hook write their pid to a file, so each test kills what it left.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from snapshot_policy.core.model import HETZNER, Hooks, RetentionPolicy, Target
from snapshot_policy.edges import hooks

APP = Target("app", HETZNER, "hz-a", "301", "app-1", RetentionPolicy(keep_last=2))
CHILD_SLEEPS = 8  # seconds a child left behind lives; every call here must return well before
WELL_BEFORE = CHILD_SLEEPS - 2  # a generous bound: the point is "not after the child", not speed


def run(
    before: tuple[str, ...] | str, timeout: float = 1.0, shell: bool = False
) -> tuple[str | None, float]:
    """Run `before` as the before hook of APP; return its result and how long the call took."""
    started = time.monotonic()
    result = hooks.run(
        "before",
        Hooks(before=before, timeout=timeout, shell=shell),
        APP,
        hooks.environment(APP, "app-1-20250101000000"),
    )
    return result, time.monotonic() - started


@pytest.fixture
def leftovers(tmp_path):
    """A file a hook writes the pids of the children it leaves behind to; they are killed after
    the test."""
    path = tmp_path / "leftover.pids"
    yield path
    for pid in path.read_text().split() if path.exists() else ():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def logged():
    """The messages the hooks module logs during the test (pytest's own log capture is off)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("snapshot_policy.edges.hooks")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def wait_for(path, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


# -- stop_all (item 5's signal path) ---------------------------------------------------------


def test_stop_all_kills_a_running_hook_and_its_call_says_it_was_stopped(tmp_path):
    started = tmp_path / "started"
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(run, f"touch {started}; sleep 30 & wait", 60.0, True)
        wait_for(started)
        hooks.stop_all()
        result, took = call.result(timeout=20)
    assert result == "before hook was stopped (killed with its process group): the run is stopping"
    assert took < 20  # not the 30 s of the sleep, nor the 60 s timeout


def test_hooks_run_as_usual_after_a_stop(tmp_path):
    started = tmp_path / "started"
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(run, f"touch {started}; sleep 30", 60.0, True)
        wait_for(started)
        hooks.stop_all()
        assert call.result(timeout=20)[0].startswith("before hook was stopped")
    assert run("exit 0", shell=True)[0] is None
    assert run("exit 5", shell=True)[0] == "before hook failed (exit status 5)"


def test_stop_all_with_no_hook_running_does_nothing():
    hooks.stop_all()
    assert run("exit 0", shell=True)[0] is None


# -- a child left behind, a timeout for the whole hook, capped output (item 6) ---------------


def test_a_hook_that_exited_is_judged_by_its_status_while_a_child_it_left_holds_its_output(
    leftovers,
):
    """`setsid -f` leaves a child in another session, outside the hook's process group, with the
    hook's output open: the call ends with the hook, not with the child."""
    result, took = run(
        ("setsid", "-f", "sh", "-c", f"echo $$ >> {leftovers}; exec sleep {CHILD_SLEEPS}")
    )
    assert result is None and took < WELL_BEFORE


def test_a_shell_hook_that_backgrounds_a_child_and_exits_0_succeeds(leftovers):
    result, took = run(f"sleep {CHILD_SLEEPS} & echo $! >> {leftovers}; exit 0", shell=True)
    assert result is None and took < WELL_BEFORE


def test_the_timeout_bounds_the_whole_hook_even_when_a_child_outside_its_group_holds_its_output(
    leftovers,
):
    result, took = run(
        f"setsid -f sh -c 'echo $$ >> {leftovers}; exec sleep {CHILD_SLEEPS}'; "
        f"sleep {CHILD_SLEEPS}",
        shell=True,
    )
    assert result == "before hook timed out after 1s and was killed" and took < WELL_BEFORE


def test_a_hook_that_fails_is_reported_failed_while_a_child_holds_its_output(leftovers):
    result, _ = run(
        f"setsid -f sh -c 'echo $$ >> {leftovers}; exec sleep {CHILD_SLEEPS}'; exit 7", shell=True
    )
    assert result == "before hook failed (exit status 7)"


def test_only_the_last_64_KiB_of_a_hooks_output_reach_the_log_with_a_note_of_what_was_dropped(
    logged,
):
    megabyte = 1024 * 1024
    result, _ = run(
        f"head -c {megabyte} /dev/zero | tr '\\0' x; echo; echo the-last-line", shell=True
    )
    logged = [record.getMessage() for record in logged]
    assert result is None and logged[-1] == "app (app-1): before hook: done"
    assert sum(len(line) for line in logged) < hooks.OUTPUT_KEPT + 1024
    assert logged[-2] == "app (app-1): before hook: the-last-line"
    dropped = megabyte + 1 + len("the-last-line\n") - hooks.OUTPUT_KEPT
    assert (
        f"app (app-1): before hook: output truncated: {dropped} bytes dropped, "
        f"the last {hooks.OUTPUT_KEPT} follow"
    ) in logged


# -- a minimal environment (item 13) ---------------------------------------------------------


def test_a_hook_sees_a_minimal_environment_and_the_variables_its_env_lists(tmp_path, monkeypatch):
    monkeypatch.setenv("HCLOUD_TOKEN", "a-token-the-hook-must-not-see")
    monkeypatch.setenv("PGPASSFILE", "/etc/db/pgpass")
    monkeypatch.setenv("LC_TIME", "C")
    monkeypatch.setenv("SNAPSHOT_POLICY_FROM_OUTSIDE", "not ours")
    monkeypatch.delenv("UNSET_NAME", raising=False)
    seen = tmp_path / "environment.json"
    dump = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"
    the_hooks = Hooks(
        before=(sys.executable, "-c", dump, str(seen)), env=("PGPASSFILE", "UNSET_NAME")
    )
    assert (
        hooks.run("before", the_hooks, APP, hooks.environment(APP, "app-1-20250101000000")) is None
    )
    environment = json.loads(seen.read_text())
    assert "HCLOUD_TOKEN" not in environment and "SNAPSHOT_POLICY_FROM_OUTSIDE" not in environment
    assert environment["PGPASSFILE"] == "/etc/db/pgpass" and "UNSET_NAME" not in environment
    assert environment["PATH"] == os.environ["PATH"] and environment["LC_TIME"] == "C"
    assert (
        environment["SNAPSHOT_POLICY_SNAPSHOT"] == "app-1-20250101000000"
        and environment["SNAPSHOT_POLICY_SERVER_ID"] == "301"
    )
    allowed = {*hooks.PASSED_ON, "PGPASSFILE", *hooks.environment(APP, "")}
    assert {name for name in environment if not name.startswith("LC_")} <= allowed
