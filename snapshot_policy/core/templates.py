"""The variables that notification templates may use (the legacy manual's list), checked early.

A misspelt variable is a validation error when the config loads, not a crash at 6 a.m.
Only plain `{name}` placeholders are allowed, as snapshots.py replaced them: a format spec
(`{total_snapshots:>300000000}`) would let a template make a message of any size, a
conversion (`{server_name!r}`) changes the text, and attribute or index lookups
(`{server_name.__class__}`, `{server_id[0]}`) would let a template reach into the program.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Sequence

VARIABLES = (
    "script",
    "provider",
    "server_name",
    "server_id",
    "snapshot_name",
    "total_snapshots",
    "snapshot_info",
    "status",
    "hostname",
    "timestamp",
    "droplet_name",  # deprecated spelling of server_name, still accepted
    "droplet_id",  # deprecated spelling of server_id, still accepted
)
DEPRECATED = ("droplet_name", "droplet_id")  # accepted, never suggested


# How much of a placeholder a message repeats: enough to find it, not a pasted novel.
_LONGEST_SHOWN = 40
_LOOKUP = re.compile(r"[.\[]")


def template_errors(
    template: str, known: Sequence[str] = VARIABLES, noun: str = "variable"
) -> list[str]:
    """Return what is wrong with `template` in plain sentences; an empty list when it is fine.

    Each placeholder must be a plain `{name}` with a name from `known` (the notification
    variables by default). `noun` names them in messages, e.g. "field" for a snapshot name
    pattern. Deprecated names are accepted but not listed as suggestions.
    """
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as error:
        return [f"has a stray brace ({error}); write {{{{ and }}}} for literal braces"]
    errors = []
    for name, spec, conversion in fields:
        base = _LOOKUP.split(name, maxsplit=1)[0]
        written = (
            "{"
            + name
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        if base not in known:
            suggested = ", ".join(n for n in known if n not in DEPRECATED)
            errors.append(f"uses unknown {noun} {_shortened('{' + name + '}')}; known: {suggested}")
        elif written != "{" + base + "}":
            errors.append(
                f"writes {_shortened(written)}, but only plain placeholders work here, "
                "without a format spec (:), conversion (!) or lookup (. or []); "
                f"write {{{base}}}"
            )
    return errors


def _shortened(text: str) -> str:
    return text if len(text) <= _LONGEST_SHOWN else text[: _LONGEST_SHOWN - 4] + "...}"


def payload_strings(payload: object, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Yield (path, text) for every string inside a JSON payload template."""
    if isinstance(payload, str):
        yield path, payload
    elif isinstance(payload, dict):
        for key, value in payload.items():
            yield from payload_strings(value, path + (key,))
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            yield from payload_strings(value, path + (index,))
