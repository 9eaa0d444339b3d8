import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import snapshot_policy
from snapshot_policy.state.runlock import LockHeld, run_lock

PACKAGE_ROOT = Path(snapshot_policy.__file__).resolve().parent.parent

# Takes the lock in another process, says so on stdout, then waits to be killed.
HOLDER = """
import sys, time
from snapshot_policy.state.runlock import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder():
    """Start another process holding the lock; return it once it holds it."""

    def start(path):
        env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        started.append(process)
        assert process.stdout.readline() == "held\n"
        return process

    started = []
    yield start
    for process in started:
        process.kill()
        process.wait()
        process.stdout.close()


def test_run_lock_refuses_while_another_process_holds_it(tmp_path, holder):
    path = tmp_path / "snapshots.lock"
    process = holder(path)
    with pytest.raises(LockHeld) as raised:
        with run_lock(str(path)):
            pytest.fail("the block must not run while another process holds the lock")
    assert raised.value.pid == process.pid
    assert raised.value.path == str(path)
    assert str(raised.value) == (
        f"another snapshot-policy run (PID {process.pid}) holds the lock file {path}; wait "
        "for it to finish"
    )


def test_run_lock_is_not_blocked_by_the_file_a_killed_run_left(tmp_path, holder):
    path = tmp_path / "snapshots.lock"
    process = holder(path)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert path.read_text() == f"{process.pid}\n"
    with run_lock(str(path)):
        assert path.read_text() == f"{os.getpid()}\n"


def test_run_lock_writes_our_pid_while_held_and_leaves_the_file(tmp_path):
    path = tmp_path / "snapshots.lock"
    path.write_text("a much longer text than any pid\n")
    with run_lock(str(path)):
        assert path.read_text() == f"{os.getpid()}\n"
    assert path.exists()


def test_run_lock_can_be_taken_again_after_release(tmp_path):
    path = str(tmp_path / "snapshots.lock")
    with run_lock(path):
        pass
    with run_lock(path):
        pass


def test_run_lock_creates_the_missing_folder(tmp_path):
    path = tmp_path / "logs" / "nested" / "snapshots.lock"
    with run_lock(str(path)):
        assert path.is_file()


def test_run_lock_twice_in_one_process_conflicts(tmp_path):
    # flock locks belong to the open file description, not the process: a second open and
    # flock in the same process is refused just like another process would be.
    path = str(tmp_path / "snapshots.lock")
    with run_lock(path):
        with pytest.raises(LockHeld) as raised:
            with run_lock(path):
                pytest.fail("a second lock in the same process must not be granted")
        assert raised.value.pid == os.getpid()
    with run_lock(path):
        pass


def test_lock_held_message_omits_an_unknown_pid():
    assert str(LockHeld("/x/snapshots.lock", None)) == (
        "another snapshot-policy run holds the lock file /x/snapshots.lock; wait for it to finish"
    )


def test_run_lock_names_the_path_when_the_folder_cannot_be_created(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = blocker / "snapshots.lock"
    with pytest.raises(OSError, match=f"cannot use lock file {path}: "):
        with run_lock(str(path)):
            pytest.fail("the block must not run without the lock")


def test_run_lock_names_the_path_when_it_is_a_folder(tmp_path):
    with pytest.raises(OSError, match=f"cannot use lock file {tmp_path}: Is a directory"):
        with run_lock(str(tmp_path)):
            pytest.fail("the block must not run without the lock")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_run_lock_names_the_path_when_permission_is_denied(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    path = folder / "snapshots.lock"
    try:
        with pytest.raises(OSError, match=f"cannot use lock file {path}: Permission denied"):
            with run_lock(str(path)):
                pytest.fail("the block must not run without the lock")
    finally:
        folder.chmod(0o700)


def test_run_lock_creates_the_file_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "snapshots.lock"
    with run_lock(str(path)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_run_lock_refuses_a_symbolic_link_and_leaves_its_target_alone(tmp_path):
    victim = tmp_path / "victim.conf"
    victim.write_text("precious settings\n")
    path = tmp_path / "snapshots.lock"
    path.symlink_to(victim)
    with pytest.raises(OSError, match=f"^cannot use lock file {path}: it is a symbolic link"):
        with run_lock(str(path)):
            pytest.fail("the block must not run through a link")
    assert victim.read_text() == "precious settings\n"


def test_run_lock_refuses_a_dangling_symbolic_link_without_creating_its_target(tmp_path):
    path = tmp_path / "snapshots.lock"
    path.symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(OSError, match="it is a symbolic link"):
        with run_lock(str(path)):
            pytest.fail("the block must not run through a link")
    assert not (tmp_path / "created-through-the-link").exists()


def test_run_lock_refuses_a_fifo_without_waiting_for_a_reader(tmp_path):
    path = tmp_path / "snapshots.lock"
    os.mkfifo(path)
    with pytest.raises(OSError, match=f"^cannot use lock file {path}: it is not a regular file"):
        with run_lock(str(path)):
            pytest.fail("the block must not run on a fifo")


def test_run_lock_refuses_a_lock_file_others_may_write_and_leaves_it_alone(tmp_path):
    path = tmp_path / "snapshots.lock"
    path.write_text("precious settings\n")
    path.chmod(0o666)
    with (
        pytest.raises(
            OSError,
            match=rf"^cannot use lock file {path}: others may write it \(mode 0666\); run `chmod "
            r"go-w",
        ),
        run_lock(str(path)),
    ):
        pytest.fail("the block must not run on a file others may write")
    assert path.read_text() == "precious settings\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_run_lock_refuses_a_lock_file_of_another_user(tmp_path):
    path = tmp_path / "snapshots.lock"
    path.write_text("precious settings\n")
    os.chown(path, 65534, 65534)
    path.chmod(0o600)
    with (
        pytest.raises(
            OSError, match=f"^cannot use lock file {path}: it belongs to user .*, not to user root"
        ),
        run_lock(str(path)),
    ):
        pytest.fail("the block must not run on another user's file")
    assert path.read_text() == "precious settings\n"
