"""Logs (SPEC §8), and the one place where secrets are masked (SPEC §5, invariant 8).

Every byte the tool emits passes `mask_secrets`: log records (a filter on every handler),
stdout and stderr (`redacted_output` wraps them for a command), every state file
(`statefiles` masks what it writes) and the error texts that notifications carry. It masks
each secret the configuration holds in every whitespace variant — with spaces, tabs, line
breaks or their escapes (`\\n`, `\\x0a`, `%0A`) around or inside it — because a secret is
echoed as often in the repr of a header or the JSON of an error as verbatim.

Redaction sits on every handler, not on a logger: a logger's filters never see records that
child loggers propagate, while a handler's filters see every line it writes. Logs and stderr
add a second layer, `redact`: strings shaped like tokens, which catches a secret the
configuration never named (an SDK echoing a header, a token pasted into a server name).
stdout and state files do not: they carry data (`plan --output json`, a saved plan, the
journal) in which a random-looking server name must survive as it is.

Log messages are also made one line: control characters and line breaks, which a server
name from an API may hold, are written as escapes, so no name can forge a log line.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO, TypeVar

_Record = TypeVar("_Record")

LOGGER_NAME = "snapshot_policy"
# Libraries whose loggers may print requests, headers or URLs with a token in them.
SDK_LOGGERS = ("azure", "urllib3", "hcloud", "httpx", "telegram")
MASK = "***"
# Shorter configured values are left alone: masking `admin` or `12345` would garble ordinary text.
MIN_SECRET_LENGTH = 6

_TOKEN_SHAPES = re.compile(
    r"(?P<fingerprint>sha256:[0-9a-fA-F]{64})"  # a plan's fingerprint: public, and needed to match plans
    r"|(?P<bearer>(?i:\bbearer)\s+)[^\s'\",;]+"
    r"|dop_v1_[0-9a-f]{64}"  # DigitalOcean personal access token
    r"|\d{6,12}:[A-Za-z0-9_-]{30,}"  # Telegram bot token, also inside .../bot<token>/sendMessage
    r"|(?P<run>(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32,}(?![A-Za-z0-9_-]))"
)
_CHARACTER_CLASSES = re.compile(r"[a-z]+|[A-Z]+|[0-9]+")

# What may stand between the characters of a secret as it is echoed: whitespace itself, its
# escapes in Python reprs and JSON (`\\n`, `\\\\n`, `\\x0a`, `\\u000a`, `\\0`), and its
# percent-encoding in a URL. Used around and inside a secret alike.
_GAP = (
    r"(?:\s"
    r"|\\+[nrtvfab0]"
    r"|\\+x(?:[01][0-9a-fA-F]|7[fF]|20|85|[aA]0)"
    r"|\\+u(?:00[01][0-9a-fA-F]|007[fF]|0020|0085|00[aA]0|20[0-2][0-9a-fA-F]|205[fF]|3000|[fF][eE][fF][fF])"
    r"|%(?:[01][0-9a-fA-F]|7[fF]|20))"
)
# Characters that a secret never holds once loaded, and that are left out when matching it.
_BLANK = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
# Written as escapes in log messages: C0 and C1 controls, DEL, and Unicode line separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

FILE_FORMAT = "%(asctime)s %(levelname)s %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(message)s"

_installed: list[logging.Handler] = []
# The secrets of the command being run (`hide`), masked in everything written meanwhile.
_in_force: tuple[str, ...] = ()


class _UTCFormatter(logging.Formatter):
    """`2026-11-26T03:00:00.123Z`: ISO 8601 in UTC, so logs of hosts in different zones compare."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with each of `secrets`, and each secret in force (`hide`), replaced by `***`
    wherever it appears in any whitespace variant.

    A variant is the secret with whitespace, control characters or their escapes (`\\n`,
    `\\x0a`, `\\u000a`, `%0A`, also doubly escaped) before, after or between any of its
    characters; the masked span is the secret's own characters and what lies between them.
    Secrets shorter than MIN_SECRET_LENGTH characters (not counting whitespace) are not masked.
    """
    pattern = _secrets_pattern(frozenset((*_in_force, *secrets)))
    return text if pattern is None else pattern.sub(MASK, text)


@functools.lru_cache(maxsize=32)
def _secrets_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    """One pattern for all `secrets`, the longest first, so one that holds another goes whole."""
    cores = {_BLANK.sub("", s) for s in secrets}
    cores = sorted((c for c in cores if len(c) >= MIN_SECRET_LENGTH), key=lambda c: (-len(c), c))
    if not cores:
        return None
    gaps = f"{_GAP}*"
    return re.compile("|".join(gaps.join(map(re.escape, core)) for core in cores))


def mask_fields(record: _Record, secrets: Iterable[str] = ()) -> _Record:
    """Return a copy of the dataclass instance `record` with each string field passed through
    `mask_secrets`: for values that are rendered into a message later (a notification's
    event), where escaping would otherwise split a secret apart before it could be masked."""
    secrets = tuple(secrets)
    changes = {}
    for field in dataclasses.fields(record):  # type: ignore[arg-type]
        value = getattr(record, field.name)
        if isinstance(value, str):
            changes[field.name] = mask_secrets(value, secrets)
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return `text` with every configured secret (see mask_secrets) and every token-shaped
    string replaced by `***`.

    Token shapes: DigitalOcean tokens, Telegram bot tokens, the value after `Bearer`, and runs
    of 32 or more `[A-Za-z0-9_-]` that look random (see _looks_random). `sha256:` fingerprints
    are kept.
    """
    return _TOKEN_SHAPES.sub(_mask_token, mask_secrets(text, secrets))


def hide(secrets: Iterable[str]) -> None:
    """Mask `secrets` too, everywhere, until the enclosing `redacted_output` block ends (for the
    rest of the process outside one): the command line calls this once the configuration is
    loaded, so stdout, stderr, logs and state files mask what it holds."""
    global _in_force
    _in_force = tuple(sorted({*_in_force, *(s for s in secrets if s)}))


@contextmanager
def redacted_output() -> Iterator[None]:
    """For the block, send stdout through `mask_secrets` and stderr through `redact`; on leaving
    it, restore both streams and forget the secrets `hide` added inside it.

    Streams are looked up when written to, so everything that writes to `sys.stdout` or
    `sys.stderr` in the block is masked: click, logging's last-resort handler, warnings,
    tracebacks printed by the command. Each write is masked as a whole.
    """
    global _in_force
    saved = (_in_force, sys.stdout, sys.stderr)
    sys.stdout = _MaskingStream(sys.stdout, mask_secrets)
    sys.stderr = _MaskingStream(sys.stderr, lambda text: redact(text, ()))
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        _in_force, sys.stdout, sys.stderr = saved


class _MaskingStream(io.TextIOBase):
    """A text stream that masks each write before passing it on.

    Its `buffer`, for whoever writes bytes (click does, for bytes messages), masks as well: the
    real binary stream beneath is never handed out.
    """

    def __init__(self, stream: TextIO, mask: Callable[[str], str]) -> None:
        super().__init__()
        self._stream = stream
        self._mask = mask
        self.buffer = _MaskingBinary(stream, mask)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._stream.write(self._mask(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "encoding", None)

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    def close(self) -> None:
        """Leave the real stream open: it belongs to whoever made it."""


class _MaskingBinary(io.RawIOBase):
    """The bytes side of a _MaskingStream: decodes each write, masks it, and passes it on in
    the real stream's encoding; bytes that do not decode pass unchanged (surrogateescape)."""

    def __init__(self, stream: TextIO, mask: Callable[[str], str]) -> None:
        super().__init__()
        self._stream = stream
        self._mask = mask
        self._encoding = getattr(stream, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        raw = bytes(data)
        text = self._mask(raw.decode(self._encoding, errors="surrogateescape"))
        binary = getattr(self._stream, "buffer", None)
        if binary is None:
            self._stream.write(text.encode(self._encoding, errors="surrogateescape").decode(self._encoding, errors="replace"))
        else:
            self._stream.flush()
            binary.write(text.encode(self._encoding, errors="surrogateescape"))
        return len(raw)

    def flush(self) -> None:
        binary = getattr(self._stream, "buffer", None)
        (binary or self._stream).flush()

    def close(self) -> None:
        """Leave the real stream open: it belongs to whoever made it."""


def escape_controls(text: str, keep: str = "") -> str:
    """Return `text` with control characters and line separators (except those in `keep`)
    written as escapes: `\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`."""

    def escaped(match: re.Match[str]) -> str:
        char = match[0]
        if char in keep:
            return char
        return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")

    return _CONTROL.sub(escaped, text)


def _mask_token(match: re.Match[str]) -> str:
    if match["fingerprint"]:
        return match[0]
    if match["bearer"]:
        return match["bearer"] + MASK
    if match["run"] and not _looks_random(match["run"]):
        return match[0]
    return MASK


def _looks_random(run: str) -> bool:
    """True when `run` mixes letters and digits and switches between lowercase, uppercase and
    digits at least once every five characters.

    Generated tokens switch often; names and words do not: `web-1-20261126030000` or
    `production-database-01-20261126030000` switch once or twice in 20 to 45 characters.
    """
    plain = run.replace("-", "").replace("_", "")
    if not (re.search(r"[0-9]", plain) and re.search(r"[A-Za-z]", plain)):
        return False
    switches = len(_CHARACTER_CLASSES.findall(plain)) - 1
    return switches * 5 >= len(run)


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
    log_file: str | None, max_bytes: int, backup_count: int, level: str, verbose: bool, secrets: Iterable[str]
) -> None:
    """Send the `snapshot_policy` logger, and the SDK loggers at WARNING, to a rotating `log_file`
    at `level` (its folder created) and, when `verbose`, to stderr at INFO (DEBUG if `level` is).

    Replaces what an earlier call installed. With neither destination nothing is written, not
    even warnings. Raise OSError naming `log_file` if it cannot be opened, ValueError for an
    unknown `level`.
    """
    level = level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    secrets = tuple(secrets)
    _remove_installed()
    handlers: list[logging.Handler] = []
    if log_file:
        handlers.append(_prepared(_rotating_file(log_file, max_bytes, backup_count), level, _UTCFormatter(FILE_FORMAT), secrets))
    if verbose:
        console_level = "DEBUG" if level == "DEBUG" else "INFO"
        handlers.append(_prepared(logging.StreamHandler(sys.stderr), console_level, logging.Formatter(CONSOLE_FORMAT), secrets))
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
        return _StateFileHandler(path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
    except OSError as error:
        raise OSError(str(error) if str(error).startswith("cannot use log file") else f"cannot use log file {path}: {error.strerror or error}") from error


class _StateFileHandler(RotatingFileHandler):
    """A rotating log that is never opened through a symbolic link and is created 0640.

    Rotation renames files, which moves a link rather than following it; each new file is
    opened as the first one was.
    """

    def __init__(self, path: str, **options: object) -> None:
        self._named = path  # as configured, for messages; logging keeps the absolute path
        super().__init__(path, **options)  # type: ignore[arg-type]

    def _open(self) -> TextIO:
        from snapshot_policy import statefiles  # here: statefiles masks text through this module

        try:
            return statefiles.open_append(self.baseFilename, "log file", statefiles.GROUP_READABLE, self.encoding or "utf-8", self.errors)
        except statefiles.StateFileError as error:
            raise type(error)("log file", self._named, error.reason) from None


def _prepared(handler: logging.Handler, level: str, formatter: logging.Formatter, secrets: tuple[str, ...]) -> logging.Handler:
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
