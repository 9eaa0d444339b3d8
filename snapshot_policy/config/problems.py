"""What is wrong with a config file, said so that a person can find it and fix it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One finding in one file.

    `path` names the key in the user's terms (`targets[0].retention.keep_daily`,
    `TELEGRAM.retries`), "" for the whole file; `line` is 1-based, None where unknown; `message`
    is one plain sentence. A `loud` warning is shown without -v too: one the user of a
    snapshots.py folder must hear of, since that script behaved otherwise.
    """

    file: str
    line: int | None
    path: str
    message: str
    warning: bool = False
    loud: bool = False

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"warning: {text}" if self.warning else text


class ConfigError(Exception):
    """A file that cannot be read or parsed at all; `problems` say which and why."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def path_text(path: Sequence[Any]) -> str:
    """Return a key path as a user would write it: ("targets", 0, "name") -> "targets[0].name"."""
    return "".join(
        f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else f".{part}"
        for part in path
    ).lstrip(".")
