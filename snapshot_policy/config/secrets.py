"""Secret values in config files: a literal, `env:NAME` or `file:PATH` (docs/promises.md §4.2).

Secrets are read when the config loads, so a missing variable or unreadable file is a
validation error with the key's path, not a failure at 6 a.m.

Every secret is trimmed: a token exported from a file, pasted from a browser or mounted as a
container secret usually ends in a line break, which an HTTP header cannot carry and which
made the SDKs print the whole `Bearer …` value in their errors. Whitespace or a control
character left inside is a mistake no trimming can repair, so it is an error that names the
key (the caller adds it) and never shows the value (docs/promises.md §5, invariant 8).
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from snapshot_policy.core.redaction import escape_controls

ENV_PREFIX = "env:"
FILE_PREFIX = "file:"
# Group or others may read: what ssh refuses for a private key.
EXPOSED_BITS = stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True)
class LiteralSecret:
    """A secret written into a snapshots.py file, as it stands in the policy shape the legacy
    files are normalised into: the value itself (trimmed), never read as `env:` or `file:`,
    and `origin`, the file and key it came from in words ("the api_token of configs/web.json"),
    for `migrate`'s note of what to export. Two are equal when their values are.

    Neither repr nor YAML shows the value: `migrate` puts an `env:` reference in its place.
    """

    value: str = field(repr=False)
    origin: str = field(compare=False)


class SecretError(ValueError):
    """A secret reference that cannot be resolved; the message says which and how to fix it,
    never what the value is."""


def resolve(value: str, env: Mapping[str, str], base: Path, ascii_only: bool = False) -> str:
    """Return the secret `value` stands for, trimmed. Relative `file:` paths start at `base`.

    Raise SecretError if the variable is unset or empty, the file unreadable or empty, or the
    value (trimmed) holds whitespace or a control character, or with `ascii_only` (a secret
    sent in an HTTP header or URL) a character that is not ASCII.
    """
    if value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if name not in env:
            raise SecretError(
                f"environment variable {name} is not set; export it or give the value another way"
            )
        if not env[name].strip():
            raise SecretError(f"environment variable {name} is {exported_empty(env[name])}")
        return clean(env[name], f"the value of environment variable {name}", ascii_only)
    if value.startswith(FILE_PREFIX):
        path = base / Path(value[len(FILE_PREFIX) :]).expanduser()
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise SecretError(
                f"cannot read secret file {path}: {getattr(error, 'strerror', None) or error}"
            ) from None
        if not text.strip():
            raise SecretError(f"secret file {path} is empty")
        return clean(text, f"the secret in file {path}", ascii_only)
    return clean(value, "the value", ascii_only)


def exported_empty(value: str) -> str:
    """What to say of a variable that is exported but holds no token: `set but empty`, or
    `set but blank (only whitespace)` (`export TOKEN="$(cat file)"` of an empty file, a line
    break pasted alone), with the fix; never "not set", which sends people to check the wrong
    thing."""
    holds = "empty" if not value else "blank (only whitespace)"
    return (
        f"set but {holds}; export the token itself "
        "(check the command or file that set it) or give the value another way"
    )


def clean(value: str, what: str = "the value", ascii_only: bool = False) -> str:
    """Return `value` without the whitespace around it. Raise SecretError, naming `what` but
    not showing the value, if nothing is left or whitespace or a control character is inside,
    or with `ascii_only` a character that is not ASCII: an HTTP header cannot carry one, and
    the request would fail only when the run makes it."""
    trimmed = value.strip()
    if not trimmed:
        raise SecretError(f"{what} is empty")
    inside = next((c for c in trimmed if c.isspace() or not c.isprintable()), None)
    if inside is not None:
        kind = (
            "a line break"
            if inside in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
            else "a space"
            if inside.isspace()
            else "a control character"
        )
        raise SecretError(
            f"{what} has {kind} inside it (not shown here); a secret is a single word, "
            "so remove it and any text pasted along"
        )
    if ascii_only and not trimmed.isascii():
        raise SecretError(
            f"{what} has a character that is not ASCII inside it (not shown here); "
            "a token is plain ASCII, so a letter, quote or dash was typed or pasted "
            "in place of one of its characters: copy it again from its source"
        )
    return trimmed


def unprotected(files: Iterable[str | os.PathLike[str]], secrets: Iterable[str]) -> list[str]:
    """Return a warning, like ssh's "UNPROTECTED PRIVATE KEY FILE", for each of `files` that
    holds one of `secrets` literally and can be read by group or others: anyone else on the
    machine could take the token. Files that cannot be read or examined are passed over.

    Each is one line of at most WARNING_COLUMNS (it is printed on every run, so cron mails
    it), naming the file and the command that fixes it (`permission_warning`).
    """
    values = [s for s in secrets if s]
    warnings = []
    for file in dict.fromkeys(str(f) for f in files):
        try:
            mode = os.stat(file).st_mode
            if not mode & EXPOSED_BITS:
                continue
            text = Path(file).read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        if any(value in text for value in values):
            warnings.append(permission_warning(file, stat.S_IMODE(mode)))
    return warnings


# The stand-ins snapshots.py itself treated as unset (its bot token, chat id and webhook URL
# lists), compared as it did: stripped and lower-cased. Anything else is a real value, a URL
# such as https://your-team.example/hook included. The sample server files' API tokens (its
# `*1.json.sample` and `*2.json.sample`) are here too: snapshots.py sent them and failed at the
# API; they are refused before that.
PLACEHOLDERS = frozenset(
    {
        "your_telegram_bot_token_here",
        "your_telegram_bot_token",
        "your_telegram_chat_id_here",
        "your_telegram_chat_id",
        "https://your-webhook-url.com/notify",
        "your-webhook-url.com",
        "your_webhook_url_here",
        "your_digitalocean_api_token_1",
        "your_digitalocean_api_token_2",
        "your_hetzner_api_token_1",
        "your_hetzner_api_token_2",
    }
)


WARNING_COLUMNS = 100


def permission_warning(file: str, mode: int) -> str:
    """`warning: run chmod 600 FILE (it holds a secret, mode 0644)`, within
    WARNING_COLUMNS: FILE as given, else relative to the current folder if that is shorter,
    else shortened in its middle (`…`), its name and its start kept. Another way out, a
    reference (env:NAME, file:PATH) in place of the secret, is in the README."""
    head, tail = "warning: run chmod 600 ", f" (it holds a secret, mode {mode:04o})"
    room = WARNING_COLUMNS - len(head) - len(tail)
    shown = min(
        (shlex.quote(escape_controls(name)) for name in dict.fromkeys((file, _relative(file)))),
        key=len,
    )
    if len(shown) > room:  # keep the file's name whole where it fits, then the path's start
        end = min(room - 1, max(len(os.path.basename(shown)) + 1, (room - 1) // 2))
        shown = shown[: room - 1 - end] + "…" + shown[len(shown) - end :]
    return head + shown + tail


def _relative(file: str) -> str:
    try:
        return os.path.relpath(file)
    except (ValueError, OSError):  # no relative path from here (the folder is gone, another drive)
        return file


def is_placeholder(value: object) -> bool:
    """True for an empty string and for the sample files' stand-ins that snapshots.py treated
    as unset (`PLACEHOLDERS`, e.g. `your_telegram_bot_token_here`): treated as unset."""
    if not isinstance(value, str):
        return False
    bare = value.strip().lower()
    return not bare or bare in PLACEHOLDERS
