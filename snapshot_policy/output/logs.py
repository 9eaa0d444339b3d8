"""Logs (docs/promises.md §8): a rotating file, the console with -v, and no secret in either.

Redaction (`redaction`) sits on every handler, not on a logger: a logger's filters never see
records that child loggers propagate, while a handler's filters see every line it writes.
Log messages are made one line: control characters and line breaks, which a server name from
an API may hold, are written as escapes, so no name can forge a log line.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from logging.handlers import RotatingFileHandler
from typing import TextIO
from weakref import WeakSet

from snapshot_policy.core.redaction import escape_controls, redact
from snapshot_policy.state import statefiles

LOGGER_NAME = "snapshot_policy"

# Libraries whose loggers may print requests, headers or URLs with a token in them.
SDK_LOGGERS = ("azure", "urllib3", "hcloud", "httpx", "telegram")

FILE_FORMAT = "%(asctime)s %(levelname)s %(message)s"
LEGACY_FILE_FORMAT = "%(asctime)s | %(levelname)-8s | %(message)s"
"""snapshots.py's log line, `2026-12-07 03:00:12 | INFO     | …`, in local time: a legacy
layout's log keeps the shape its operators' greps and `cut -d'|'` were written for."""
LEGACY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CONSOLE_FORMAT = "%(levelname)s %(message)s"
STAMP_FORMAT = "[%Y-%m-%d %H:%M:%S]"
"""The time before each line apply prints under cron, in local time: the shape snapshots.py
gave the lines of its cronjob.log (`[2026-12-07 03:00:12] SUMMARY: …`)."""

_installed: list[logging.Handler] = []


class _UTCFormatter(logging.Formatter):
    """`2026-11-26T03:00:00.123Z`: ISO 8601 in UTC, so logs of hosts in different zones compare."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class _StampedFormatter(logging.Formatter):
    """CONSOLE_FORMAT with the run's local time before each line (`stamped`): the time of the
    run's clock, not of the record, so a run's lines and its tests agree on one clock."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        super().__init__(CONSOLE_FORMAT)
        self._now = now

    def format(self, record: logging.LogRecord) -> str:
        return stamped(super().format(record), self._now())


def stamp(moment: datetime) -> str:
    """`[2026-12-07 03:00:12]`: `moment` in this host's local time (STAMP_FORMAT)."""
    return moment.astimezone().strftime(STAMP_FORMAT)


def stamped(text: str, moment: datetime) -> str:
    """`text` with `stamp(moment)` and a space before each of its lines, so every line of a
    cron mail or syslog entry says when it was written; empty lines stay empty."""
    prefix = stamp(moment) + " "
    return "".join(
        prefix + line if line.strip() else line for line in text.splitlines(keepends=True)
    )


def is_terminal(stream: object) -> bool:
    """Whether `stream` is a terminal: a person reads it, so no times before its lines."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


_gone: WeakSet[TextIO] = WeakSet()
"""Consoles nobody reads any more (`write_console`): nothing more is written to them."""


def write_console(stream: TextIO, text: str) -> None:
    """Write and flush `text` to `stream`, a console. If nobody reads it any more (EPIPE: the
    contrib cron line's `logger` exited, e.g. without /dev/log) or it is closed, write nothing
    more to it, and point its descriptor at /dev/null so nothing else that writes there fails
    (the interpreter's last flush included), and go on: a console is not worth a lost snapshot,
    and the run's log, report and notifications still tell (README "Logs and the cron output").
    """
    if stream in _gone:
        return
    try:
        stream.write(text)
        stream.flush()
    except (BrokenPipeError, ValueError):  # ValueError: a closed file
        _silence(stream)


def say(stream: TextIO, text: str, now: datetime | None) -> None:
    """Write `text` (lines ending in a newline) to the console `stream` as apply prints under
    cron: each line after the time `now` (`stamped`) unless `now` is None or `stream` is a
    terminal; through `write_console`, so a console nobody reads ends nothing."""
    write_console(stream, text if now is None or is_terminal(stream) else stamped(text, now))


def _silence(stream: TextIO) -> None:
    try:
        _gone.add(stream)
    except TypeError:  # a stream that cannot be weakly referred to: /dev/null below suffices
        pass
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(null, stream.fileno())
    except (OSError, ValueError):  # no descriptor (a test's stream), or a closed one
        pass
    finally:
        os.close(null)


class _ConsoleHandler(logging.StreamHandler):
    """The -v console: its lines written as `write_console` writes them, so a console nobody
    reads ends them, not the run."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream in _gone:
            return
        try:
            text = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        write_console(self.stream, text)


_STAMPED_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] ", re.MULTILINE)


def unstamped(text: str) -> str:
    """`text` without the time `stamped` put before its lines: what a terminal would show."""
    return _STAMPED_LINE.sub("", text)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, traceback and stack before a handler writes it, and
    escapes control characters and line breaks in the message (in the traceback and stack, all
    but their line breaks), so every record stays the lines it was meant to be.

    The record is changed in place, so every later handler gets the masked text: the message is
    formatted once (args cleared) and the traceback is formatted here and its exc_info dropped,
    so no formatter can render it again unmasked.
    """

    def __init__(self, secrets: Iterable[str], formatter: logging.Formatter) -> None:
        super().__init__()
        self._secrets = tuple(secrets)
        self._formatter = formatter

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = escape_controls(redact(_message(record), self._secrets))
        record.args = ()
        if record.exc_info:
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = escape_controls(redact(record.exc_text, self._secrets), keep="\n")
        if record.stack_info:
            record.stack_info = escape_controls(redact(record.stack_info, self._secrets), keep="\n")
        return True


def _message(record: logging.LogRecord) -> str:
    """The formatted message; a logging call with wrong arguments must not end the run."""
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        return f"{record.msg} (arguments that do not fit: {record.args!r})"


def setup_logging(
    log_file: str | None,
    max_bytes: int,
    backup_count: int,
    level: str,
    verbose: bool,
    secrets: Iterable[str],
    legacy: bool = False,
    now: Callable[[], datetime] | None = None,
) -> None:
    """Send the `snapshot_policy` logger, and the SDK loggers at WARNING, to a rotating `log_file`
    at `level` (its folder created) and, when `verbose`, to stderr at INFO (DEBUG if `level` is).
    With `legacy` the file's lines take snapshots.py's shape (LEGACY_FILE_FORMAT). With `now`
    (apply's clock) and stderr not a terminal, each console line starts with that clock's local
    time (`stamped`), as every line apply prints under cron does (README "Logs").

    Replaces what an earlier call installed. With neither destination nothing is written, not
    even warnings. Raise OSError naming `log_file` if it cannot be opened, ValueError for an
    unknown `level`.
    """
    level = level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(
            f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    secrets = tuple(secrets)
    _remove_installed()
    handlers: list[logging.Handler] = []
    if log_file:
        handlers.append(
            _prepared(
                _rotating_file(log_file, max_bytes, backup_count),
                level,
                (
                    logging.Formatter(LEGACY_FILE_FORMAT, LEGACY_TIME_FORMAT)
                    if legacy
                    else _UTCFormatter(FILE_FORMAT)
                ),
                secrets,
            )
        )
    if verbose:
        console_level = "DEBUG" if level == "DEBUG" else "INFO"
        stamps = now is not None and not is_terminal(sys.stderr)
        handlers.append(
            _prepared(
                _ConsoleHandler(sys.stderr),
                console_level,
                _StampedFormatter(now) if stamps else logging.Formatter(CONSOLE_FORMAT),
                secrets,
            )
        )
    own_level = min((handler.level for handler in handlers), default=logging.WARNING)
    if not handlers:
        # Without any handler, logging's "last resort" would print warnings to stderr unmasked.
        handlers.append(logging.NullHandler())
    _installed.extend(handlers)
    _route(logging.getLogger(LOGGER_NAME), handlers, own_level)
    for name in SDK_LOGGERS:
        _route(logging.getLogger(name), handlers, logging.WARNING)


def _rotating_file(path: str, max_bytes: int, backup_count: int) -> RotatingFileHandler:
    try:
        return _StateFileHandler(
            path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
    except OSError as error:
        raise OSError(
            str(error)
            if str(error).startswith("cannot use log file")
            else f"cannot use log file {path}: {error.strerror or error}"
        ) from error


class _StateFileHandler(RotatingFileHandler):
    """A rotating log that is never opened through a symbolic link, never appended to when
    another user owns it or others may write it (they could forge its lines), and is created 0640.

    Rotation renames files, which moves a link rather than following it; each new file is
    opened as the first one was.
    """

    def __init__(self, path: str, **options: object) -> None:
        self._named = path  # as configured, for messages; logging keeps the absolute path
        super().__init__(path, **options)  # type: ignore[arg-type]

    def _open(self) -> TextIO:
        try:
            return statefiles.open_append(
                self.baseFilename,
                "log file",
                statefiles.GROUP_READABLE,
                self.encoding or "utf-8",
                self.errors,
            )
        except statefiles.StateFileError as error:
            raise type(error)("log file", self._named, error.reason) from None


def _prepared(
    handler: logging.Handler, level: str, formatter: logging.Formatter, secrets: tuple[str, ...]
) -> logging.Handler:
    handler.setLevel(level)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter(secrets, formatter))
    return handler


def _route(logger: logging.Logger, handlers: list[logging.Handler], level: int) -> None:
    """Only our handlers: propagating to the root could reach a handler without redaction."""
    logger.setLevel(level)
    logger.propagate = False
    for handler in handlers:
        logger.addHandler(handler)


def _remove_installed() -> None:
    for name in (LOGGER_NAME, *SDK_LOGGERS):
        logger = logging.getLogger(name)
        for handler in _installed:
            logger.removeHandler(handler)
    for handler in _installed:
        handler.close()
    _installed.clear()
