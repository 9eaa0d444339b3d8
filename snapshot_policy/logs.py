"""Logs (SPEC §8): a rotating file, the console with -v, and no secret in either (SPEC §5, invariant 8).

Redaction sits on every handler, not on a logger: a logger's filters never see records that
child loggers propagate, while a handler's filters see every line it writes. Two layers mask:
the secret values the configuration holds, exactly, and strings shaped like tokens, which
catches a secret the configuration never named (an SDK echoing a header, a token pasted into
a server name).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path

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

FILE_FORMAT = "%(asctime)s %(levelname)s %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(message)s"

_installed: list[logging.Handler] = []


class _UTCFormatter(logging.Formatter):
    """`2026-11-26T03:00:00.123Z`: ISO 8601 in UTC, so logs of hosts in different zones compare."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return `text` with every configured secret and every token-shaped string replaced by `***`.

    Secrets shorter than MIN_SECRET_LENGTH are not masked. Token shapes: DigitalOcean tokens,
    Telegram bot tokens, the value after `Bearer`, and runs of 32 or more `[A-Za-z0-9_-]` that
    look random (see _looks_random). `sha256:` fingerprints are kept.
    """
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _TOKEN_SHAPES.sub(_mask_token, text)


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
    """Masks secrets in a record's message, traceback and stack before a handler writes it.

    The record is changed in place, so every later handler gets the masked text: the message is
    formatted once (args cleared) and the traceback is formatted here and its exc_info dropped,
    so no formatter can render it again unmasked.
    """

    def __init__(self, secrets: Iterable[str], formatter: logging.Formatter) -> None:
        super().__init__()
        self._secrets = tuple(secrets)
        self._formatter = formatter

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(_message(record), self._secrets)
        record.args = ()
        if record.exc_info:
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
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
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
    except OSError as error:
        raise OSError(f"cannot use log file {path}: {error.strerror or error}") from error


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
