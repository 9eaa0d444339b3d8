"""Per-server overrides: a server's own label or tag replaces one rule of its target
(docs/promises.md §4.2).

Hetzner: the label `snapshot-policy/keep-last=14`; DigitalOcean: the tag
`snapshot-policy:keep-last:14` (tags carry no value, so it is the tag's last part). Every
retention key is written with `-` for `_` (keep-last, keep-daily, keep-within-daily, …,
keep-verified), and `schedule-every=12h` replaces the schedule. A cron expression cannot be
written in either: labels and tags allow no spaces and no `*`, so `schedule-cron` is refused
with that reason. With `server_overrides: autobackup` (Hetzner), hcloud-snapshot-as-backup's
`AUTOBACKUP.KEEP-LAST=N` is read as keep_last too.

How an override combines: it replaces that one key of the target's rule and leaves the others
(`keep-last=14` on a target of keep_last 3 and keep_daily 7 gives keep_last 14 and keep_daily
7); `schedule-every` replaces the schedule whole, `every` or `cron`. `0` turns a counted rule
off. Values are checked as the policy checks them (the schema's counts, `Duration.parse`),
and a value that does not pass fails that server alone, with a message naming the server, the
label or tag, and the fix: a label read wrongly could delete by a rule nobody wrote. So does
a set of overrides that leaves no rule, or only keep_verified (it deletes by none of its own),
and two tags that give one key different values. Labels of ours that are not overrides (the
owner, drill marks) are not read here.

Pure: values in, a Target or an OverrideError out.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import DIGITALOCEAN, RetentionPolicy, Schedule, Target

LABELS, AUTOBACKUP, OFF = "labels", "autobackup", "off"
MODES = (LABELS, AUTOBACKUP, OFF)
LABEL_PREFIX = "snapshot-policy/"
TAG_PREFIX = "snapshot-policy:"
AUTOBACKUP_LABEL = "AUTOBACKUP"
"""hcloud-snapshot-as-backup's label: `AUTOBACKUP=true` on a server selects it, and an empty
`AUTOBACKUP` label on a snapshot marks one it made (ownership.py adopts those)."""
AUTOBACKUP_KEEP_LAST = "AUTOBACKUP.KEEP-LAST"
AUTOBACKUP_SOURCE = "hcloud-snapshot-as-backup"
MAX_COUNT = 100_000
"""The schema's most for a count (`$defs/count`)."""
SCHEDULE = "schedule"
COUNT_KEYS = (*RetentionPolicy.COUNTED_RULES, "keep_verified")
RULE_KEYS = (*RetentionPolicy.COUNTED_RULES, *RetentionPolicy.DURATION_RULES, "keep_verified")
WRITTEN = {key.replace("_", "-"): key for key in RULE_KEYS} | {"schedule-every": SCHEDULE}
"""The keys as a label or tag writes them, and the rule each stands for."""


class OverrideError(ValueError):
    """A server's label or tag that cannot be applied: its message names the server, the label
    or tag, and the fix."""


def overridden(target: Target, labels: Mapping[str, str], mode: str) -> Target:
    """Return `target` with the rules its server's `labels` (DigitalOcean: tags, with empty
    values) override under `mode`, and `rule_sources` saying where each came from. Raise
    OverrideError when one cannot be applied: that server fails, its neighbours run."""
    if mode == OFF:
        return target
    found = _read(target, labels, mode)
    if not found:
        return target
    retention, schedule = target.retention, target.schedule
    sources = dict(target.rule_sources)
    for key, (value, source, _) in found.items():
        if key == SCHEDULE:
            schedule = Schedule(every=value)
        else:
            retention = replace(retention, **{key: value})
        sources[key] = source
    written = " and ".join(shown for _, _, shown in found.values())
    if not retention.has_rules:
        raise OverrideError(
            f"{_server(target)}: with {written} no retention rule is left; remove that, or "
            "set another rule above 0 in the policy or in a label or tag"
        )
    if not replace(retention, keep_verified=0).has_rules:
        raise OverrideError(
            f"{_server(target)}: with {written} only keep_verified is left, which only adds "
            "to the other rules and deletes by none of its own; remove that, or set another "
            "rule above 0"
        )
    return replace(target, retention=retention, schedule=schedule, rule_sources=sources)


def _server(target: Target) -> str:
    return f"target {target.name}, server {target.server_name} ({target.server_id})"


def _read(
    target: Target, labels: Mapping[str, str], mode: str
) -> dict[str, tuple[object, str, str]]:
    """The overrides a server's labels give, {rule: (value, source, label or tag)}, checked."""
    found: dict[str, tuple[object, str, str]] = {}  # rule: (value, source, label or tag)
    errors: list[str] = []
    digitalocean = target.provider == DIGITALOCEAN
    for name, value in sorted(labels.items()):
        if digitalocean:
            if not name.lower().startswith(TAG_PREFIX):
                continue
            written, _, value = name[len(TAG_PREFIX) :].lower().partition(":")
            shown = source = f"tag {name}"
            example = f"tag {TAG_PREFIX}{{key}}:{{value}}"
        else:
            if not name.startswith(LABEL_PREFIX):
                continue
            written = name[len(LABEL_PREFIX) :]
            shown, source = f"label {name}={value}", f"label {name}"
            example = f"label {LABEL_PREFIX}{{key}}={{value}}"
        if not written.startswith(("keep", "schedule")):
            continue  # our marks (owner, drill, …), not overrides
        try:
            key, parsed = _parse(written, value, example)
        except ValueError as error:
            errors.append(f"{shown}: {error}")
            continue
        if key in found and found[key][0] != parsed:
            errors.append(f"{shown}: {found[key][2]} gives {key} another value; remove one")
            continue
        found.setdefault(key, (parsed, f"{source} on {target.server_name}", shown))
    if mode == AUTOBACKUP and AUTOBACKUP_KEEP_LAST in labels and not digitalocean:
        _autobackup(labels[AUTOBACKUP_KEEP_LAST], target, found, errors)
    if errors:
        raise OverrideError(f"{_server(target)}: " + "; ".join(errors))
    return found


def _parse(written: str, value: str, example: str) -> tuple[str, object]:
    """The rule a written key stands for and its value, checked as the policy checks it."""
    if written == "schedule-cron":
        raise ValueError(
            "a cron expression cannot be written in a label or tag (no spaces, no *); "
            "use schedule-every such as 12h, or set schedule.cron in the policy"
        )
    key = WRITTEN.get(written)
    if key is None:
        close = difflib.get_close_matches(written, list(WRITTEN), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ValueError(
            f"{written} is not a rule that can be overridden; {hint}keys: {', '.join(WRITTEN)}"
        )
    if not value:
        raise ValueError(
            f"has no value; write it as {example.format(key=written, value=_sample(key))}"
        )
    if key in COUNT_KEYS:
        return key, parse_count(value)
    duration = Duration.parse(value)
    if key == SCHEDULE and duration.is_calendar:
        raise ValueError(
            f"{value!r}: a schedule is counted in hours, days or weeks such as 12h, 24h or 7d"
        )
    return key, duration


def parse_count(value: str, least: int = 0) -> int:
    """A number of snapshots written as text, as the schema's count allows it (`least` to
    100000). Raise ValueError saying what to write."""
    digits = value.isascii() and value.isdigit() and len(value) <= len(str(MAX_COUNT))
    if not digits or not least <= int(value) <= MAX_COUNT:
        raise ValueError(
            f"{value[:40]!r} is not a number of snapshots; write a whole number from {least} "
            f"to {MAX_COUNT}{', 0 turning the rule off' if least == 0 else ''}"
        )
    return int(value)


def _sample(key: str) -> str:
    return "14" if key in COUNT_KEYS else "12h" if key == SCHEDULE else "30d"


def _autobackup(
    value: str, target: Target, found: dict[str, tuple[object, str, str]], errors: list[str]
) -> None:
    """hcloud-snapshot-as-backup's keep-last: the newest N are kept. It read a value below 1
    as 1; here that is refused, as 0 would turn keep_last off."""
    shown = f"label {AUTOBACKUP_KEEP_LAST}={value}"
    try:
        count = parse_count(value, least=1)
    except ValueError as error:
        errors.append(f"{shown} ({AUTOBACKUP_SOURCE}): {error}")
        return
    if "keep_last" in found and found["keep_last"][0] != count:
        errors.append(f"{shown}: {found['keep_last'][2]} gives keep_last another value; remove one")
        return
    source = f"{AUTOBACKUP_SOURCE}'s label {AUTOBACKUP_KEEP_LAST} on {target.server_name}"
    found.setdefault("keep_last", (count, source, shown))


def describe_rules(retention: RetentionPolicy, sources: Mapping[str, str]) -> str:
    """The rules as `RetentionPolicy.describe` says them, each overridden one followed by where
    it came from (`keep_last 14 (label snapshot-policy/keep-last on web-1)`), and a rule a
    label turned off said too."""
    parts = []
    for key in RULE_KEYS:
        value = getattr(retention, key)
        if value or key in sources:
            shown = value if value else "off"
            parts.append(f"{key} {shown}" + (f" ({sources[key]})" if key in sources else ""))
    return ", ".join(parts) or "no rules"


def describe_schedule(schedule: Schedule, sources: Mapping[str, str]) -> str:
    """The schedule as `Schedule.describe` says it, and where it came from when a label set it."""
    text = schedule.describe()
    return f"{text} ({sources[SCHEDULE]})" if SCHEDULE in sources else text
