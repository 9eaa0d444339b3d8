"""Turning a legacy layout into an equivalent YAML policy (docs/promises.md §3 `migrate`).

`legacy.py` already normalises the legacy files into the policy's shape, and the targets are
built from that document; migrate prints it. So the policy plans exactly as the legacy
files do — same accounts, targets, snapshot names, retention, adoption of snapshots.py's
snapshots and notifications — by construction.

Secrets never reach the output: each distinct secret value becomes one `env:` reference (a
bot token used by two channels is one variable), and `exports` says which variable to set
from which file's key, never the value. Numbers print as they were written (`timeout: 10`),
and text of several lines as a YAML block (`|`), so templates read as they will be sent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snapshot_policy.config.policy import TOKEN_VARIABLES
from snapshot_policy.config.secrets import ENV_PREFIX, LiteralSecret

HEADER = """\
# snapshot-policy policy, migrated from a snapshots.py layout by `snapshot-policy migrate`.
# {where}
# Export the variables `migrate` listed. Snapshot names keep the form snapshots.py used, and
# its snapshots are adopted (adopt_legacy_names), so retention counts them as before.
"""
BESIDE_CONFIG = "Save it beside snapshots.config: the paths below are relative to that folder."
BESIDE_ITSELF = "The paths below are relative to the folder of this file."
_PATHS = (("lock_file",), ("log", "file"), ("audit_log",))
_LONGEST_ORIGINS = 2
_OTHER_BREAKS = "\r\x85\u2028\u2029"


@dataclass(frozen=True)
class Migration:
    text: str
    exports: tuple[str, ...]
    """One line per variable to export: its name and where its value is found."""


def migrate(
    document: Mapping, base: Path, out: Path | None = None, only: Collection[str] | None = None
) -> Migration:
    """Return the YAML text of `document`, a legacy layout normalised into the policy's
    shape (`legacy.LegacyLoad.document`), whose relative paths start at `base`.

    Written to `out`, the paths are made relative to its folder; printed, they stay relative
    to `base`. Every LiteralSecret becomes an `env:` reference. With `only`, just the targets
    of those names, and the accounts and channels they use.
    """
    if only is not None:
        document = _only(document, only)
    secrets = _Secrets()
    data = {
        **document,
        "accounts": {
            name: secrets.replace(
                account,
                "token",
                _variable(TOKEN_VARIABLES[account["provider"]], name.rsplit("-", 1)[-1]),
            )
            for name, account in document["accounts"].items()
        },
    }
    if "notifications" in document:
        data["notifications"] = {
            name: secrets.replace(
                secrets.replace(channel, "bot_token", _variable(name, "bot_token")),
                "secret",
                _variable(name, "secret"),
            )
            for name, channel in document["notifications"].items()
        }
    if "settings" in document:
        data["settings"] = _rebased(document["settings"], base, out)
    where = BESIDE_ITSELF if out is not None else BESIDE_CONFIG
    return Migration(HEADER.format(where=where) + dump(data), secrets.exports())


def _only(document: Mapping, names: Collection[str]) -> dict:
    targets = [t for t in document["targets"] if t["name"] in names]
    accounts = {t["account"] for t in targets}
    channels = {name for t in targets for name in t.get("notify", ())}
    result = {
        **document,
        "accounts": {k: v for k, v in document["accounts"].items() if k in accounts},
        "notifications": {
            k: v for k, v in document.get("notifications", {}).items() if k in channels
        },
        "targets": targets,
    }
    if not result["notifications"]:
        del result["notifications"]
    return result


def dump(data: Any) -> str:
    """Return `data` as YAML in the order given: numbers as they are, multi-line text as a
    `|` block. Raise yaml.representer.RepresenterError for anything but plain data, such as a
    LiteralSecret left in by mistake (its value is never shown)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000)


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Several lines as a `|` block (PyYAML falls back to quotes where a block cannot hold the
    text exactly); text holding a break YAML reads differently from Python (CR, NEL, the
    Unicode line and paragraph separators) double-quoted, where each is escaped."""
    style = '"' if any(c in value for c in _OTHER_BREAKS) else "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list) -> yaml.SequenceNode:
    """A list of plain values on one line (`ids: [4711]`), anything else as a block."""
    flat = all(
        isinstance(item, (str, int, float, bool)) and not (isinstance(item, str) and "\n" in item)
        for item in value
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_Dumper.add_representer(str, _text)
_Dumper.add_representer(list, _list)


def _variable(*parts: str) -> str:
    """An environment variable's name made of `parts`: `telegram-2`, `bot_token` ->
    TELEGRAM_2_BOT_TOKEN."""
    return re.sub(r"[^A-Z0-9_]", "_", "_".join(parts).upper())


class _Secrets:
    """The variable of each distinct secret value, and where each value was found."""

    def __init__(self) -> None:
        self.variables: dict[str, str] = {}
        self.origins: dict[str, list[str]] = {}

    def replace(self, section: Mapping, key: str, variable: str) -> dict:
        """Return `section` with the LiteralSecret at `key` (if any) replaced by its reference."""
        secret = section.get(key)
        if not isinstance(secret, LiteralSecret):
            return dict(section)
        if secret.value not in self.variables:
            taken = set(self.variables.values())
            candidates = (
                variable if n == 1 else f"{variable}_{n}" for n in range(1, len(taken) + 2)
            )
            self.variables[secret.value] = next(c for c in candidates if c not in taken)
        name = self.variables[secret.value]
        if secret.origin not in self.origins.setdefault(name, []):
            self.origins[name].append(secret.origin)
        return {**section, key: ENV_PREFIX + name}

    def exports(self) -> tuple[str, ...]:
        lines = []
        for name, origins in self.origins.items():
            shown = " and ".join(origins[:_LONGEST_ORIGINS])
            more = len(origins) - _LONGEST_ORIGINS
            lines.append(f"export {name}=...  # {shown}{f' and {more} more' if more > 0 else ''}")
        return tuple(lines)


def _rebased(settings: Mapping, base: Path, out: Path | None) -> dict:
    """`settings` with each relative path made relative to the folder of `out` instead of `base`."""
    if out is None:
        return dict(settings)
    result = {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in settings.items()
    }
    for path in _PATHS:
        section = result
        for key in path[:-1]:
            section = section.get(key, {})
        value = section.get(path[-1])
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            section[path[-1]] = os.path.relpath(base / value, out.parent)
    return result
