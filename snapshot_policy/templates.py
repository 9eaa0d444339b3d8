"""The variables that notification templates may use (the legacy manual's list), checked early.

A misspelt variable is a validation error when the config loads, not a crash at 6 a.m.
Only plain names are allowed: `{server_name.__class__}` and other attribute or index
lookups would let a template reach into the program.
"""

from __future__ import annotations

import string
from collections.abc import Iterator

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


def template_errors(template: str) -> list[str]:
    """Return what is wrong with `template` in plain sentences; an empty list when it is fine."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        return [f"has a stray brace ({error}); write {{{{ and }}}} for literal braces"]
    unknown = [name for name in fields if name not in VARIABLES]
    return [f"uses unknown variable {{{name}}}; known: {', '.join(VARIABLES[:10])}" for name in unknown]


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
