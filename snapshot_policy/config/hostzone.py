"""The host's time zone, as an IANA name: what a legacy layout names its snapshots in.

snapshots.py named snapshots `NAME-YYYYmmddHHMMSS` in the host's local time (its
`datetime.now()`), which the C library takes from `TZ`, else from `/etc/localtime`. A legacy
layout keeps that (issue 21, item 5), as the policy's `timezone`, so the name follows
daylight saving time as the old one did and `migrate` can write the zone down. Read here, at
the configuration's edge, from the environment it is handed: nothing below reads the zone.

A few lines rather than the `tzlocal` library: Linux and the BSDs are the only hosts (the old
script needed `fcntl`), and the cases are few: `TZ` (a name, `:name`, a path into a zoneinfo
folder, a POSIX rule), else the `/etc/localtime` link, `/etc/timezone`, or a copied
`/etc/localtime` matched against the zoneinfo files. What finds no name falls back with a
warning that says how to name one.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

UTC = "UTC"
LOCALTIME, TIMEZONE_FILE = Path("/etc/localtime"), Path("/etc/timezone")
# A POSIX rule without daylight saving time (`<+03>-3`, `EST5`): a fixed offset, which
# `Etc/GMT±N` names exactly when it is whole hours (its sign is POSIX's: west is positive).
_LONGEST_SHOWN = 60
_FIXED_RULE = re.compile(r"(?:[A-Za-z]{3,}|<[+\-A-Za-z0-9]{3,}>)([+-]?)(\d{1,2})")


@dataclass(frozen=True)
class HostZone:
    """The zone's IANA name, and a warning (None if all is well) where it had to guess."""

    name: str
    warning: str | None = None
    source: str = "TZ"


def host_zone(
    env: Mapping[str, str],
    localtime: Path = LOCALTIME,
    timezone_file: Path = TIMEZONE_FILE,
    zoneinfo_dirs: Iterable[str] = zoneinfo.TZPATH,
) -> HostZone:
    """The zone the C library would use for this environment, as an IANA name."""
    dirs = tuple(zoneinfo_dirs)
    if "TZ" in env:
        return _from_tz(env["TZ"], dirs)
    if localtime.is_symlink():
        name = _name_in_path(localtime.resolve())
        if name is not None:
            return HostZone(name, source=str(localtime))
    if timezone_file.is_file():
        name = _valid(timezone_file.read_text(errors="replace").strip())
        if name is not None:
            return HostZone(name, source=str(timezone_file))
    if not localtime.exists():
        return HostZone(UTC, source=str(localtime))  # the C library's default
    name = _matching_file(localtime, dirs)
    if name is not None:
        return HostZone(name, source=str(localtime))
    return HostZone(
        UTC,
        f"{localtime} names no IANA time zone, so snapshot names use UTC; set TZ to the "
        "host's zone (such as TZ=Europe/Berlin) to name them in local time, as snapshots.py did",
        str(localtime),
    )


def _from_tz(value: str, dirs: tuple[str, ...]) -> HostZone:
    text = value.strip().removeprefix(":")
    if not text:
        return HostZone(UTC)  # an empty TZ is UTC to the C library
    name = _valid(text) if not text.startswith("/") else _name_in_path(Path(text).resolve())
    if name is not None:
        return HostZone(name)
    fixed = _FIXED_RULE.fullmatch(text)
    if fixed is not None and int(fixed.group(2)) <= 14:
        hours = int(fixed.group(2))
        return HostZone(
            "Etc/GMT" + ("" if not hours else f"{'-' if fixed.group(1) == '-' else '+'}{hours}")
        )
    shown = value if len(value) <= _LONGEST_SHOWN else value[: _LONGEST_SHOWN - 1] + "…"
    return HostZone(
        UTC,
        f"{shown!r} is not an IANA time zone name, so snapshot names use UTC; set it to a "
        "name such as TZ=Europe/Berlin, which also follows daylight saving time",
    )


def _name_in_path(path: Path) -> str | None:
    """`Europe/Berlin` from `/usr/share/zoneinfo/Europe/Berlin` (or its `posix/` twin)."""
    parts = path.parts
    if "zoneinfo" not in parts:
        return None
    rest = parts[len(parts) - parts[::-1].index("zoneinfo") :]
    if rest[:1] == ("posix",):
        rest = rest[1:]
    return _valid("/".join(rest))


def _matching_file(localtime: Path, dirs: tuple[str, ...]) -> str | None:
    """The name of a zoneinfo file with the same bytes as a copied /etc/localtime."""
    try:
        data = localtime.read_bytes()
    except OSError:
        return None
    for folder in map(Path, dirs):
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.rglob("*")):
            relative = candidate.relative_to(folder)
            if relative.parts[0] in ("posix", "right") or not candidate.is_file():
                continue
            try:
                same = candidate.stat().st_size == len(data) and candidate.read_bytes() == data
            except OSError:
                continue
            if same and _valid(str(relative)) is not None:
                return str(relative)
    return None


def _valid(name: str) -> str | None:
    """`name` if it is a zone another host knows by that name too: not `localtime` (this
    host's own link), `posixrules` or `right/…`, which zoneinfo opens but do not travel."""
    return name if name in _portable_names() else None


@functools.cache
def _portable_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - {"localtime"})
