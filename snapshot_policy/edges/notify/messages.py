"""What a notification says (docs/promises.md §7): Telegram texts and webhook payloads for one
target's result.

Pure: no I/O. Templates use the legacy manual's variables (`templates.VARIABLES`) as plain
`{name}` placeholders; config validation rejects anything else, and whatever slips through
(an unknown name, a format spec) is left as written rather than ending the run.

Telegram texts use the legacy `Markdown` parse mode. Values are escaped for the place they
land in, following Telegram's parser: outside any entity, `_`, `*`, backtick and `[` get a
backslash. Inside an entity nothing can be escaped, so only the entity's own closing
character is a problem; it is written as "close, escaped character, reopen" (`*a*\\**b*` for
bold `a*b`), as the Bot API manual does. A value in a code span therefore shows as typed
(`db_main-1`, not `db\\_main-1`). Inside link text, link URLs and ``` blocks values go in as
they are; if Telegram then refuses the text, the sender falls back to `plain_text`.

A channel in the `snapshots.py` style (every channel of a legacy layout) says what that script
said, byte for byte: its built-in templates when the channel sets none, `{script}` as
`snapshots.py`, `{snapshot_name}` as `none` after a failure and `{snapshot_info}` always as
"N snapshots exist" (docs/promises.md §4.1). A template set empty (`message_success: ""`,
`payload_success: {}`, what an empty `message_success =` in snapshots.config becomes) sends
what that script sent for an empty setting: its FINAL_STATUS text, and its own body with
`total_snapshots` a number.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from snapshot_policy.core.model import Channel
from snapshot_policy.core.redaction import escape_controls

SUCCESS, FAILURE = "SUCCESS", "FAILURE"
SCRIPT = "snapshot-policy"
# Channel styles: this program's texts, or snapshots.py's (a legacy layout's channels).
STYLE, LEGACY_STYLE = "snapshot-policy", "snapshots.py"
LEGACY_SCRIPT = "snapshots.py"
# snapshots.py's built-in templates (the defaults its load_config() filled in), exactly.
LEGACY_MESSAGE_SUCCESS = (
    "*Snapshot Success*\nServer: `{server_name}`\nSnapshot: `{snapshot_name}`\n"
    "Total: `{total_snapshots}` snapshots"
)
LEGACY_MESSAGE_FAILURE = (
    "*Snapshot Failed*\nServer: `{server_name}`\nError occurred during snapshot creation"
)
# What it sent when the setting was empty: its FINAL_STATUS layout, the provider in capitals.
LEGACY_FINAL_STATUS = (
    "*FINAL_STATUS*\n*Script:* `{script}`\n*Provider:* `{PROVIDER}`\n*Server:* `{server_name}`\n"
    "*Status:* `{status}`\n*Hostname:* `{hostname}`\n*Timestamp:* `{timestamp}`\n"
    "*Snapshot:* `{snapshot_name}`\n*Total Snapshots:* `{snapshot_info}`"
)
# Its success and failure bodies were the same: every value a string, in this key order.
LEGACY_PAYLOAD = {
    "script": "{script}",
    "provider": "{provider}",
    "server": "{server_name}",
    "server_id": "{server_id}",
    "status": "{status}",
    "hostname": "{hostname}",
    "timestamp": "{timestamp}",
    "snapshot_name": "{snapshot_name}",
    "total_snapshots": "{total_snapshots}",
    "snapshot_info": "{snapshot_info}",
}
PARSE_MODE = "Markdown"
# Telegram refuses longer texts; counting the Markdown source over-estimates, which is safe.
TELEGRAM_LIMIT = 4096
# A provider's error can be long (a whole response body); the message must still fit.
ERROR_LIMIT, SUMMARY_ERROR_LIMIT = 1000, 200
# The error of a delivery still under way, or not begun, when a run's notifications ran out of time.
CUT_OFF = "cut off: the run's time for notifications ran out"

_FORMATTER = string.Formatter()
_MARKDOWN_SPECIAL = re.compile(r"[_*`\[]")
_ENTITY_CLOSERS = {"*": "*", "_": "_", "`": "`", "[": "]"}


@dataclass(frozen=True)
class Style:
    """How a channel words its messages: `name` STYLE or LEGACY_STYLE; `script` what
    `{script}` renders (None: the style's own, SCRIPT or LEGACY_SCRIPT)."""

    name: str = STYLE
    script: str | None = None

    @property
    def legacy(self) -> bool:
        return self.name == LEGACY_STYLE

    @property
    def script_name(self) -> str:
        if self.script is not None:
            return self.script
        return LEGACY_SCRIPT if self.legacy else SCRIPT


DEFAULT_STYLE = Style()


@dataclass(frozen=True)
class Drilled:
    """What a restore drill did (issue 22), for an Event about a drill: the snapshot restored
    (the Event's `snapshot_name`), to what and where, how long until its server ran, and
    whether its server is gone."""

    snapshot_id: str
    machine_type: str
    region: str
    restore_seconds: float | None
    deleted: bool
    stage: str


@dataclass(frozen=True)
class Event:
    """One target's result, as notifications tell it. `snapshot_name` is "" when none was made."""

    target: str
    provider: str
    server_name: str
    server_id: str
    snapshot_name: str
    total_snapshots: int
    status: str  # SUCCESS or FAILURE
    error: str | None
    hostname: str
    timestamp: datetime  # timezone-aware
    made: bool = False
    """This run made the target's snapshot (whatever became of its deletions)."""
    drill: Drilled | None = None
    """Set for a restore drill's result: told in its own words (`drill_text`,
    `drill_payload`), whatever templates the channel has for snapshots."""
    downtime_seconds: float | None = None
    """consistency: shutdown — how long the server was off (docs/promises.md §5.17); told
    in the default message and webhook body only, never in a snapshots.py-style one."""


def legacy_status(event: Event) -> str:
    """The status as snapshots.py told it: a server whose snapshot was made was a success,
    whatever became of its deletions (issue 21)."""
    return SUCCESS if event.made else event.status


def as_told(event: Event, channels: Sequence[Channel]) -> list[tuple[Event, tuple[Channel, ...]]]:
    """`event` for each of `channels`, as each one's style tells it: the snapshots.py style's
    channels hear of a made snapshot whose deletions failed as a success, without the error
    (`legacy_status`), so its success template is the one filled."""
    legacy = tuple(c for c in channels if getattr(c, "style", None) == LEGACY_STYLE)
    others = tuple(c for c in channels if c not in legacy)
    if not legacy or legacy_status(event) == event.status:
        return [(event, tuple(channels))]
    told = [(replace(event, status=SUCCESS, error=None), legacy)]
    return told + ([(event, others)] if others else [])


def variables(event: Event, style: Style = DEFAULT_STYLE) -> dict[str, str | int]:
    """Return every template variable for `event`, rendered as snapshots.py rendered them:
    `{timestamp}` in this host's local time, `%Y-%m-%d %H:%M:%S` (`total_snapshots` is an int,
    written as its digits). Names from an API are shown with their control, invisible and
    bidi characters escaped, as everywhere else. In the legacy style `{status}` is
    `legacy_status`, a failure's `{snapshot_name}` is `none` (snapshots.py's failure meant no
    snapshot) and `{snapshot_info}` keeps its plural for one snapshot."""
    server_name, snapshot_name = (
        escape_controls(event.server_name),
        escape_controls(event.snapshot_name),
    )
    status = legacy_status(event) if style.legacy else event.status
    if style.legacy and (status != SUCCESS or not snapshot_name):
        snapshot_name = "none"
    return {
        "script": style.script_name,
        "provider": event.provider,
        "server_name": server_name,
        "server_id": event.server_id,
        "snapshot_name": snapshot_name,
        "total_snapshots": event.total_snapshots,
        "snapshot_info": snapshot_info(event.total_snapshots, style),
        "status": status,
        "hostname": event.hostname,
        "timestamp": event.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        "droplet_name": server_name,
        "droplet_id": event.server_id,
    }


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def snapshot_info(total: int, style: Style = DEFAULT_STYLE) -> str:
    """`3 snapshots exist`, `1 snapshot exists`: the legacy `{snapshot_info}` wording (the
    legacy style keeps snapshots.py's `1 snapshots exist`)."""
    return "1 snapshot exists" if total == 1 and not style.legacy else f"{total} snapshots exist"


# -- Telegram ---------------------------------------------------------------------------------


def telegram_text(
    event: Event, template: str | None, style: Style = DEFAULT_STYLE
) -> tuple[str, str | None]:
    """Return (text, parse_mode): `template` filled with escaped values, or the style's default
    (the legacy style's is snapshots.py's built-in template). A drill's result is told in
    its own words (`drill_text`)."""
    if event.drill is not None:
        return drill_text(event, markdown=True), PARSE_MODE
    template = _legacy_template(event, template, style)
    if template is None:
        return _default_layout(event, markdown=True), PARSE_MODE
    return _fill(template, _values(event, style, template), markdown=True), PARSE_MODE


def plain_text(event: Event, template: str | None, style: Style = DEFAULT_STYLE) -> str:
    """The same message unescaped, to send without a parse mode when Telegram refuses the markup."""
    if event.drill is not None:
        return drill_text(event, markdown=False)
    template = _legacy_template(event, template, style)
    if template is None:
        return _default_layout(event, markdown=False)
    return _fill(template, _values(event, style, template), markdown=False)


def _legacy_template(event: Event, template: str | None, style: Style) -> str | None:
    if not style.legacy:
        return template
    if template == "":
        return LEGACY_FINAL_STATUS
    if template is not None:
        return template
    return LEGACY_MESSAGE_SUCCESS if event.status == SUCCESS else LEGACY_MESSAGE_FAILURE


def _values(event: Event, style: Style, template: str) -> dict[str, str | int]:
    """The variables, and for LEGACY_FINAL_STATUS the provider in capitals, as it showed it."""
    values = variables(event, style)
    if template is LEGACY_FINAL_STATUS:
        values["PROVIDER"] = event.provider.upper()
    return values


def summary_text(events: Sequence[Event]) -> tuple[str, str | None]:
    """Return (text, parse_mode) of one message for a whole run (at least one event)."""
    return _summary(events, markdown=True), PARSE_MODE


def summary_plain_text(events: Sequence[Event]) -> str:
    """`summary_text` unescaped, for the plain-text fallback."""
    return _summary(events, markdown=False)


def _default_layout(event: Event, markdown: bool) -> str:
    value = _escape_outside if markdown else str
    ok = event.status == SUCCESS
    title = "Snapshot succeeded" if ok else "Snapshot failed"
    lines = [
        f"{'✅' if ok else '❌'} {_bold(title, markdown)}",
        f"Server: {_server(event, value, with_id=True)}",
    ]
    if event.snapshot_name:
        lines.append(f"Snapshot: {value(event.snapshot_name)}")
    if not ok:
        lines.append(f"Error: {value(_shorten(event.error or 'unknown error', ERROR_LIMIT))}")
    if event.downtime_seconds is not None:
        lines.append(f"Server off for {event.downtime_seconds:g}s")
    lines += [
        snapshot_info(event.total_snapshots),
        f"Host: {value(event.hostname)}",
        f"Time: {_utc_text(event.timestamp)}",
    ]
    return "\n".join(lines)


def _summary(events: Sequence[Event], markdown: bool) -> str:
    """Counts, one line per target (failures first), then host and time; lines that would
    push the text past Telegram's limit are replaced by `… and N more`."""
    value = _escape_outside if markdown else str
    failed = [e for e in events if e.status != SUCCESS]
    title = f"Snapshot run: {len(events) - len(failed)} succeeded, {len(failed)} failed"
    head = f"{'❌' if failed else '✅'} {_bold(title, markdown)}"
    latest = max(events, key=lambda e: e.timestamp)
    tail = [f"Host: {value(latest.hostname)}", f"Time: {_utc_text(latest.timestamp)}"]
    ordered = failed + [e for e in events if e.status == SUCCESS]
    lines = [_summary_line(e, value) for e in ordered]
    shown = len(lines)
    text = "\n".join([head, *lines, *tail])
    while len(text) > TELEGRAM_LIMIT and shown > 0:
        shown -= 1
        text = "\n".join([head, *lines[:shown], f"… and {len(lines) - shown} more", *tail])
    return text


def _summary_line(event: Event, value: Callable[[object], str]) -> str:
    where = _server(event, value, with_id=False)
    if event.drill is not None:
        return (
            f"{'✅' if event.status == SUCCESS else '❌'} {where}: {value(_drill_outcome(event))}"
        )
    if event.status != SUCCESS:
        return f"❌ {where}: {value(_shorten(event.error or 'unknown error', SUMMARY_ERROR_LIMIT))}"
    made = f"{value(event.snapshot_name)}, " if event.snapshot_name else ""
    return f"✅ {where}: {made}{snapshot_info(event.total_snapshots)}"


def _server(event: Event, value: Callable[[object], str], with_id: bool) -> str:
    """`web-1 (id 101, digitalocean)`; parts left out when unknown (a target whose servers
    could not be listed has neither id nor, sometimes, provider)."""
    details = [f"id {event.server_id}" if with_id and event.server_id else "", event.provider]
    known = ", ".join(value(d) for d in details if d)
    return f"{value(event.server_name)} ({known})" if known else value(event.server_name)


def drill_text(event: Event, markdown: bool) -> str:
    """A restore drill's result: passed or failed, the snapshot, where it was restored, how
    long it took, and whether its server is gone."""
    value = _escape_outside if markdown else str
    drill = event.drill
    ok = event.status == SUCCESS
    title = "Restore drill passed" if ok else "Restore drill failed"
    lines = [
        f"{'✅' if ok else '❌'} {_bold(title, markdown)}",
        f"Server: {_server(event, value, with_id=True)}",
        f"Snapshot: {value(event.snapshot_name)} ({value(drill.snapshot_id)})",
        f"Restored to: {value(drill.machine_type)} in {value(drill.region)}",
    ]
    if drill.restore_seconds is not None:
        lines.append(f"Restore time: {drill.restore_seconds:.0f}s")
    if not ok:
        lines.append(f"Failed at: {drill.stage}")
        lines.append(f"Error: {value(_shorten(event.error or 'unknown error', ERROR_LIMIT))}")
    if not drill.deleted:
        lines.append("Its server is NOT deleted yet: the next run deletes it")
    lines += [f"Host: {value(event.hostname)}", f"Time: {_utc_text(event.timestamp)}"]
    return "\n".join(lines)


def _drill_outcome(event: Event) -> str:
    drill = event.drill
    took = f" in {drill.restore_seconds:.0f}s" if drill.restore_seconds is not None else ""
    if event.status == SUCCESS:
        return f"drill of {event.snapshot_name} passed, restored{took}"
    error = _shorten(event.error or "unknown error", SUMMARY_ERROR_LIMIT)
    return f"drill of {event.snapshot_name} failed at {drill.stage}: {error}"


def drill_payload(event: Event) -> dict:
    """A restore drill's result as a webhook's JSON body (`"event": "drill"`)."""
    drill = event.drill
    return {
        "script": SCRIPT,
        "event": "drill",
        "provider": event.provider,
        "server": event.server_name,
        "server_id": event.server_id,
        "target": event.target,
        "status": event.status,
        "passed": event.status == SUCCESS,
        "snapshot_id": drill.snapshot_id,
        "snapshot_name": event.snapshot_name,
        "machine_type": drill.machine_type,
        "region": drill.region,
        "restore_seconds": drill.restore_seconds,
        "stage": drill.stage,
        "server_deleted": drill.deleted,
        "hostname": event.hostname,
        "timestamp": _utc_text(event.timestamp),
        "error": event.error,
    }


def _bold(text: str, markdown: bool) -> str:
    return f"*{text}*" if markdown else text


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- templates ---------------------------------------------------------------------------------


def _fill(template: str, values: Mapping[str, object], markdown: bool) -> str:
    """Substitute `values` into `template`'s plain `{name}` placeholders; escape them for
    Markdown when `markdown`. Anything else in braces stays as written: an unknown name, a
    format spec or conversion (`{total_snapshots:>9}`, `{server_name!r}`), an attribute or
    index lookup, and a malformed template. Config validation rejects all of these; this is
    the second line, so a template can never make a value longer than the value itself.
    """
    try:
        chunks = list(_FORMATTER.parse(template))
    except ValueError:
        return template
    out: list[str] = []
    open_entity: str | None = None  # the closer of the Markdown entity open here, if any
    for literal, name, spec, conversion in chunks:
        out.append(literal)
        if markdown:
            open_entity = _entity_after(literal, open_entity)
        if name is None:
            continue
        text = _field(values, name, spec, conversion)
        out.append(_escape(text, open_entity) if markdown else text)
    return "".join(out)


def _field(values: Mapping[str, object], name: str, spec: str, conversion: str | None) -> str:
    """The value of a plain `{name}`, as snapshots.py's text replacement gave it; otherwise the
    field as written."""
    if spec or conversion or name not in values:
        return (
            "{"
            + name
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
    return str(values[name])


def _entity_after(text: str, closer: str | None) -> str | None:
    """Which Markdown entity is open after `text`, given the one open before it (by its closing
    string; None: none). Mirrors Telegram's legacy parser: no nesting, no escapes inside."""
    i = 0
    while i < len(text):
        if closer is None:
            if text[i] == "\\" and _MARKDOWN_SPECIAL.fullmatch(text[i + 1 : i + 2]):
                i += 2
            elif text.startswith("```", i):
                closer, i = "```", i + 3
            else:
                closer, i = _ENTITY_CLOSERS.get(text[i]), i + 1
        elif text.startswith(closer, i):
            i += len(closer)
            closer = None
            if text[i - 1] == "]" and text.startswith("(", i):
                closer, i = ")", i + 1  # the link's URL
        else:
            i += 1
    return closer


def _escape(value: str, closer: str | None) -> str:
    if closer is None:
        return _escape_outside(value)
    if closer in ("*", "_", "`"):
        return value.replace(closer, f"{closer}\\{closer}{closer}")
    return value


def _escape_outside(value: object) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", str(value))


# -- webhooks ----------------------------------------------------------------------------------


def webhook_payload(event: Event, template: dict | None, style: Style = DEFAULT_STYLE) -> dict:
    """Return the JSON payload: `template` with variables filled into every string value
    (keys untouched; a string stays a string, `"{total_snapshots}"` is `"3"`, as snapshots.py
    sent it), or the style's default: snapshots.py's body (LEGACY_PAYLOAD) in the legacy
    style, else the legacy fields with `total_snapshots` a number, plus `target` and `error`.
    In the legacy style an empty template (`{}`) is the body snapshots.py sent for an empty
    setting: LEGACY_PAYLOAD's, `total_snapshots` a number.
    """
    if event.drill is not None:
        return drill_payload(event)
    values = variables(event, style)
    if style.legacy and template == {}:  # what snapshots.py sent for an empty payload setting
        return {**_fill_payload(LEGACY_PAYLOAD, values), "total_snapshots": event.total_snapshots}
    if template is None and style.legacy:
        template = LEGACY_PAYLOAD
    if template is None:
        return {
            "script": values["script"],
            "provider": event.provider,
            "server": event.server_name,
            "server_id": event.server_id,
            "status": event.status,
            "hostname": event.hostname,
            "timestamp": values["timestamp"],
            "snapshot_name": event.snapshot_name,
            "total_snapshots": event.total_snapshots,
            "snapshot_info": values["snapshot_info"],
            "target": event.target,
            "error": event.error,
            **(
                {"downtime_seconds": event.downtime_seconds}
                if event.downtime_seconds is not None
                else {}
            ),
        }
    return _fill_payload(template, values)


def webhook_body(payload: object, style: Style = DEFAULT_STYLE) -> bytes:
    """The bytes sent: compact UTF-8 JSON, or in the legacy style as snapshots.py's HTTP
    library wrote it (`", "` and `": "` between items, non-ASCII as `\\uXXXX`)."""
    if style.legacy:
        return json.dumps(payload, allow_nan=False).encode()
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _fill_payload(node: object, values: Mapping[str, object]) -> object:
    if isinstance(node, dict):
        return {key: _fill_payload(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill_payload(value, values) for value in node]
    if isinstance(node, str):
        return _fill(node, values, markdown=False)
    return node
