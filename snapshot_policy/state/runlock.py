"""One run at a time (docs/promises.md §5): a lock file held with `flock`.

`flock` rather than "the file exists": the kernel drops the lock when its holder dies, so a
file left behind by a killed run never blocks the next one. The file stays in place after the
run; removing it would race with a run that has just opened it.

The file is opened without following a symbolic link and created readable by its owner only
(docs/promises.md §5, invariant 10), and it is emptied only once the lock on it is ours: a link
put in its place would otherwise have its target cut down to our PID.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from snapshot_policy.state import statefiles


class LockHeld(Exception):
    """Another run holds the lock file; the CLI exits 3 (docs/promises.md §3)."""

    def __init__(self, path: str, pid: int | None) -> None:
        holder = (
            f"another snapshot-policy run (PID {pid})" if pid else "another snapshot-policy run"
        )
        super().__init__(f"{holder} holds the lock file {path}; wait for it to finish")
        self.path = path
        self.pid = pid


@contextmanager
def run_lock(path: str) -> Iterator[None]:
    """Hold the lock file at `path` for the duration of the block, with our PID written inside.

    Raise LockHeld if another open of the file holds it: another process, or a second
    `run_lock` on the same path in this process (flock locks belong to the open file, not to the
    process). Raise OSError naming `path` if the file or its folder cannot be created or locked,
    and StateFileError (an OSError) if `path` is a symbolic link, not a regular file, another
    user's or writable by others.
    """
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Truncate only now: until the lock is ours, the file holds the holder's PID.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # unbuffered: readers see it at once
        except BlockingIOError:
            raise LockHeld(path, _holder_pid(fd)) from None
        except OSError as error:
            raise _unusable(path, error) from error
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open(path: str) -> int:
    """Open (creating it, 0600, and its folder if needed) without truncating or following a link."""
    return statefiles.open_fd(path, os.O_RDWR | os.O_CREAT, "lock file", statefiles.OWNER_ONLY)


def _holder_pid(fd: int) -> int | None:
    """The PID the holder wrote, or None while it has not written it yet or the text is not one."""
    try:
        pid = int(os.pread(fd, 32, 0).decode("ascii").strip())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return pid if pid > 0 else None


def _unusable(path: str, error: OSError) -> OSError:
    return OSError(f"cannot use lock file {path}: {error.strerror or error}")
