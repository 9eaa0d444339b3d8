"""Writing the tool's own files — lock, journal, log, audit log, saved plan, run report, metrics —
safely (docs/promises.md §5, invariants 8 and 10).

These files live in folders other users may write to (a shared `logs/`, `/tmp`, a textfile
collector's folder) and the tool often runs as root, so a symbolic link put where one of them
belongs would make the tool overwrite whatever the link points to. Therefore:

- no file is opened through a symbolic link at its last component (`O_NOFOLLOW`), and a link,
  or anything but a regular file, where a state file belongs is a StateFileError that names
  the file and what to do;
- a file replaced as a whole is written to a new temporary file beside it (created
  exclusively, readable by its owner only), flushed to disk, and renamed over the old one, so
  a reader sees the old file or the new one, never half of one, and a link in the way is
  replaced, never followed;
- files are created readable by their owner only (0600); the caller may allow more (logs: 0640);
- an existing file another user owns, or that group or others may write, is refused as ssh
  refuses such files: its text may be someone else's (a journal planted in `/tmp` naming a
  manual snapshot would have it adopted and deleted). Root's files are trusted too, as by ssh:
  root can change any file anyway. Running as root, a file of another user is refused even
  when only its owner may write it — the owner can change it at will;
- the text is masked on its way out (`redaction.mask_secrets`), like everything else the tool emits.

Folders on the way are created as needed and may be links: only the file's own name is
guarded, as for ssh's files. Hard links are left to the kernel (`fs.protected_hardlinks`
keeps others from linking files they cannot write); refusing them would stop the snapshots
of a host whose backup tool hard-links its logs.

`check_files` refuses, before a run changes anything, state paths that name one file twice
or a configuration file, a folder, or a place that cannot be written.
"""

from __future__ import annotations

import os
import pwd
import shlex
import stat
import tempfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TextIO

from snapshot_policy.core.redaction import mask_secrets

OWNER_ONLY = 0o600
GROUP_READABLE = 0o640
# The metrics textfile holds no secret and is read by node_exporter, another user.
WORLD_READABLE = 0o644

_LINK_ADVICE = (
    "it is a symbolic link, and the tool never writes its files through one; "
    "remove the link (the tool creates the file) or point the setting at a regular file"
)


class StateFileError(OSError):
    """A state file that cannot be used safely; the message names the file and says what to do."""

    def __init__(self, what: str, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot use {what} {path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[0])


class UnsafeStateFile(StateFileError):
    """A state file someone else may have put or changed — a symbolic link (writing it would
    write another file), a file of another user, a file others may write — so its text cannot
    be trusted. Readers that take an unreadable file as empty must still raise this."""


def open_fd(path: str | os.PathLike[str], flags: int, what: str, mode: int = OWNER_ONLY) -> int:
    """Return a descriptor of the regular file at `path` opened with `flags` (plus no-follow and
    non-blocking), created with `mode` when `flags` hold O_CREAT, its folder too.

    `what` names the file in messages ("lock file"). Raise FileNotFoundError if it does not
    exist and `flags` do not create it; UnsafeStateFile if it is a symbolic link, another
    user's or writable by others; StateFileError if it is not a regular file or cannot be opened.
    """
    if flags & os.O_CREAT:
        _make_folder(path, what)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except FileNotFoundError:
        if flags & os.O_CREAT:
            raise StateFileError(what, path, "its folder does not exist") from None
        raise
    except OSError as error:
        raise _refusal(what, path, error) from None
    try:
        _check_file(os.fstat(fd), what, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """Return the UTF-8 text of the state file at `path`. Raise FileNotFoundError if there is
    none, StateFileError as `open_fd` does, UnicodeDecodeError if it is not UTF-8 text."""
    fd = open_fd(path, os.O_RDONLY, what)
    with open(fd, "rb") as handle:
        return handle.read().decode("utf-8")


def write_atomic(
    path: str | os.PathLike[str], text: str, what: str, mode: int = OWNER_ONLY
) -> None:
    """Replace the file at `path` with `text` (masked, UTF-8) in one step, creating its folder.

    The text goes to a new, exclusively created temporary file in the same folder, is flushed
    to disk and renamed over `path`; the new file has `mode`. Raise StateFileError (naming
    `what` and `path`) if it cannot be written or is not a regular file, UnsafeStateFile if
    `path` is a symbolic link or a file `refuse_unsafe` refuses.
    """
    refuse_unsafe(path, what)
    folder = _make_folder(path, what)
    data = mask_secrets(text).encode("utf-8")
    try:
        fd, spare = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise _refusal(what, path, error) from None
    try:
        try:
            if mode != OWNER_ONLY:
                os.fchmod(fd, mode)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(spare, path)
    except BaseException as error:  # killed or failed: leave the old file, and no spare
        _remove(spare)
        if isinstance(error, OSError):
            raise _refusal(what, path, error) from None
        raise
    _sync_folder(folder)


def append_text(path: str | os.PathLike[str], text: str, what: str, mode: int = OWNER_ONLY) -> None:
    """Append `text` (masked, UTF-8) to the file at `path` in one write, creating it with `mode`
    and its folder if needed. Raise StateFileError as `open_fd` does, or if the write fails."""
    fd = open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what, mode)
    try:
        _write_all(fd, mask_secrets(text).encode("utf-8"))
    except OSError as error:
        raise _refusal(what, path, error) from None
    finally:
        os.close(fd)


def open_append(
    path: str | os.PathLike[str],
    what: str,
    mode: int = OWNER_ONLY,
    encoding: str = "utf-8",
    errors: str | None = None,
) -> TextIO:
    """Return a text stream appending to the file at `path`, created with `mode` (its folder
    too). The caller masks what it writes (the log's handlers do). Raise as `open_fd` does."""
    fd = open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what, mode)
    return open(fd, "a", encoding=encoding, errors=errors)


def refuse_unsafe(path: str | os.PathLike[str], what: str) -> None:
    """Raise UnsafeStateFile if `path` is a symbolic link, or a regular file of another user or
    writable by others, so a run can refuse before it starts rather than when it writes.
    Anything else — no file yet, a folder that cannot be read — is left for the write to report."""
    try:
        status = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(status.st_mode):
        raise UnsafeStateFile(what, path, _LINK_ADVICE)
    if stat.S_ISREG(status.st_mode):
        _check_trusted(status, what, path)


def check_files(
    files: Mapping[str, str | os.PathLike[str] | None],
    config_files: Iterable[str | os.PathLike[str]],
    read_only: Collection[str] = (),
) -> None:
    """Refuse, before a run changes anything, state paths that would destroy each other or the
    configuration: the lock file set to the log cuts the log to a PID every run; `plan --out`
    set to the policy overwrites it.

    `files` maps the name the user knows each path by (a setting such as "lock_file", an
    option such as "--report") to the path; None is a file this run does not use. Each must
    be a file of its own — not another one's (same resolved path or same inode), not one of
    `config_files`, not a folder, not a link, not another user's or writable by others — and,
    unless its name is in `read_only` (plan only reads the journal), writable: its folder
    exists or can be made and may be written, and the file itself, if there, may be written.
    Raise StateFileError with one sentence naming the setting, the other setting or the
    problem, and the fix.
    """
    configs = [(str(name), _identity(name)) for name in config_files]
    seen: list[tuple[str, Identity]] = []
    for name, path in files.items():
        if path is None:
            continue
        identity = _identity(path)
        for config, known in configs:
            if _same(identity, known):
                raise StateFileError(
                    name, path, f"it is the configuration file {config}; choose another path"
                )
        for other, known in seen:
            if _same(identity, known):
                raise StateFileError(
                    name, path, f"{other} names the same file; give {other} and {name} a file each"
                )
        seen.append((name, identity))
        _check_path(name, path, writable=name not in read_only)


def _check_path(name: str, path: str | os.PathLike[str], writable: bool) -> None:
    """What `check_files` asks of one file on its own."""
    try:
        status: os.stat_result | None = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        # a folder on the way is missing or a file: see below
        status = None
    except OSError as error:
        raise _refusal(name, path, error) from None
    if status is not None:
        if stat.S_ISDIR(status.st_mode):
            raise StateFileError(
                name, path, "it is a folder, not a file; remove it or choose another path"
            )
        _check_file(status, name, path)
    if not writable:
        return
    folder = Path(path).parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent  # the nearest folder that exists: the rest can be made in it
    if not folder.is_dir():
        raise StateFileError(
            name,
            path,
            f"{folder} is not a folder, so the file cannot be made in it; choose another path",
        )
    me = _user(os.geteuid())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StateFileError(
            name,
            path,
            f"user {me} may not write in {folder}; "
            "choose a folder it may write or change that folder's permissions",
        )
    if status is not None and not os.access(path, os.W_OK):
        raise StateFileError(
            name,
            path,
            f"user {me} may not write it; choose another path or change the file's permissions",
        )


Identity = tuple[Path, tuple[int, int] | None]


def _identity(path: str | os.PathLike[str]) -> Identity:
    """The path with every link and `..` resolved, and the file's device and inode if it exists."""
    try:
        status = os.stat(path)
    except OSError:
        inode = None
    else:
        inode = (status.st_dev, status.st_ino)
    try:
        return Path(path).resolve(), inode
    except (OSError, RuntimeError):  # a loop of links: a write would refuse it anyway
        return Path(os.path.abspath(path)), inode


def _same(one: Identity, other: Identity) -> bool:
    return one[0] == other[0] or (one[1] is not None and one[1] == other[1])


def _check_file(status: os.stat_result, what: str, path: str | os.PathLike[str]) -> None:
    if stat.S_ISLNK(status.st_mode):
        raise UnsafeStateFile(what, path, _LINK_ADVICE)
    if not stat.S_ISREG(status.st_mode):
        raise StateFileError(
            what, path, "it is not a regular file; remove it or point the setting at a regular file"
        )
    _check_trusted(status, what, path)


def _check_trusted(status: os.stat_result, what: str, path: str | os.PathLike[str]) -> None:
    """Refuse, as ssh does, a file whose text another user may have written."""
    me = os.geteuid()
    quoted = shlex.quote(str(path))
    if status.st_uid not in (me, 0):
        raise UnsafeStateFile(
            what,
            path,
            f"it belongs to user {_user(status.st_uid)}, not to user {_user(me)}, "
            "who runs snapshot-policy, so another user may have put it there; "
            f"remove it, or if it is yours, run `chown {_user(me)} {quoted}`",
        )
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeStateFile(
            what,
            path,
            f"others may write it (mode {stat.S_IMODE(status.st_mode):04o}); "
            f"run `chmod go-w {quoted}`, or remove it if you did not make it",
        )


def _user(uid: int) -> str:
    """The user's name, else the number (which `chown` takes as well)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _refusal(what: str, path: str | os.PathLike[str], error: OSError) -> StateFileError:
    """The error of a failed open or write, in a sentence; ELOOP (O_NOFOLLOW met a link) says so."""
    if isinstance(error, StateFileError):
        return error
    if os.path.islink(path):
        return UnsafeStateFile(what, path, _LINK_ADVICE)
    return StateFileError(what, path, error.strerror or str(error))


def _make_folder(path: str | os.PathLike[str], what: str) -> Path:
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StateFileError(what, path, error.strerror or str(error)) from None
    return folder


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; best effort (some file systems refuse to sync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
