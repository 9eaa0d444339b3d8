"""Secret values in config files: a literal, `env:NAME` or `file:PATH` (SPEC §4.2).

Secrets are read when the config loads, so a missing variable or unreadable file is a
validation error with the key's path, not a failure at 6 a.m.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "env:"
FILE_PREFIX = "file:"


class SecretError(ValueError):
    """A secret reference that cannot be resolved; the message says which and how to fix it."""


def resolve(value: str, env: Mapping[str, str], base: Path) -> str:
    """Return the secret `value` stands for. Relative `file:` paths start at `base`."""
    if value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if not env.get(name):
            raise SecretError(f"environment variable {name} is not set or empty; export it or give the value another way")
        return env[name]
    if value.startswith(FILE_PREFIX):
        path = base / Path(value[len(FILE_PREFIX) :]).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise SecretError(f"cannot read secret file {path}: {getattr(error, 'strerror', None) or error}") from None
        if not text:
            raise SecretError(f"secret file {path} is empty")
        return text
    return value


def is_placeholder(value: object) -> bool:
    """True for the sample files' stand-ins such as `your_telegram_bot_token_here`: treated as unset."""
    if not isinstance(value, str):
        return False
    bare = value.strip().lower().removeprefix("https://").removeprefix("http://")
    return bare.startswith(("your_", "your-")) or not bare
