"""Which snapshots the tool may manage: only those it can prove it made (docs/promises.md §5).

Hetzner: the `managed-by=snapshot-policy` label and the server-id label, on an image whose
`created_from.id` is the server. DigitalOcean: the `snapshot-policy` tag on a snapshot whose
`resource_id` is the droplet, whatever its name — a droplet can be renamed, its snapshots
then keep the old name in theirs, and they are still its snapshots. With
`adopt_legacy_names` (always on in legacy mode), unmarked snapshots of the same server whose
names fit the pattern exactly are adopted too: that is how `snapshots.py` named them,
`{name}-{YYYYmmddHHMMSS}`. Since there the name is the only proof, it must be the server's
name now: an unmarked snapshot named after a renamed server's old name stays unmanaged.
A name that merely contains the server's name proves nothing. With `server_overrides:
autobackup`, hcloud-snapshot-as-backup's snapshots of the same server are adopted alike: its
`AUTOBACKUP` label and its default name, `<server name>-<Unix time>` (`made_by_autobackup`).

Each configuration marks what it makes with its owner (`settings.owner`): the Hetzner label
`snapshot-policy/owner=<owner>`, the DigitalOcean tag `snapshot-policy-owner-<owner>`
(DigitalOcean tags carry no value, and their names are case-insensitive, so owners are
compared there regardless of case). A snapshot marked with another owner is another
configuration's: never managed, never adopted, whatever its name or the journal say. One
with our marker and no owner mark was made by a version before owners; it is taken as ours,
as it always was.

Restore drills (issue 22) mark two things. The throwaway server: Hetzner labels
`snapshot-policy/drill=true`, the owner, the target and the snapshot; DigitalOcean tags
`snapshot-policy-drill` and the owner's tag. Only a server carrying both the drill mark and
this configuration's owner mark, and no other owner's, may ever be deleted
(`is_drill_server`; docs/promises.md §5). And the drilled snapshot: the Hetzner label
`snapshot-policy/drilled=passed-2026-12-07` (each drill replaces it), the DigitalOcean tag
`snapshot-policy-drilled-passed-2026-12-07` (tags accumulate: the newest date wins, and a day
with both a pass and a failure counts as failed, the reading that trusts less).

Pins and soft deletion (issue 23, item 2; docs/promises.md §5.16) are marks too. A pin:
the Hetzner labels `snapshot-policy/pinned-until=2027-01-31`, `snapshot-policy/pin-note=…`
and `snapshot-policy/pin-protected=true` (the tool set the delete protection, so only it
lifts it); the DigitalOcean tags `snapshot-policy-pinned-until-2027-01-31` and
`snapshot-policy-pin-note-…`. A pending deletion: the Hetzner label
`snapshot-policy/pending-delete=2026-12-14`, the DigitalOcean tag
`snapshot-policy-pending-delete-2026-12-14`, the day from which it may be deleted. Among
DigitalOcean's tags (which accumulate) the latest day wins, the reading that deletes less; a
mark that does not parse is no mark, and `unreadable_marks` names it for the plan.

Pure, and free of any SDK: the plan can be made and tested without loading pydo or hcloud.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from types import MappingProxyType

from snapshot_policy.core.model import (
    DEFAULT_CREATION_TIMEOUT,
    DIGITALOCEAN,
    HETZNER,
    CloudSnapshot,
    DrillMark,
    Pin,
    Snapshot,
    Target,
)
from snapshot_policy.core.overrides import AUTOBACKUP, AUTOBACKUP_LABEL

MANAGED_BY_LABEL = "managed-by"
MANAGED_BY_VALUE = "snapshot-policy"
SERVER_ID_LABEL = "snapshot-policy/server-id"
TARGET_LABEL = "snapshot-policy/target"
OWNER_LABEL = "snapshot-policy/owner"
DIGITALOCEAN_TAG = "snapshot-policy"
OWNER_TAG_PREFIX = "snapshot-policy-owner-"

DRILL_LABEL = "snapshot-policy/drill"
DRILL_LABEL_VALUE = "true"
DRILL_TAG = "snapshot-policy-drill"
DRILL_SNAPSHOT_LABEL = "snapshot-policy/snapshot"
DRILLED_LABEL = "snapshot-policy/drilled"
DRILLED_TAG_PREFIX = "snapshot-policy-drilled-"
PASSED, FAILED = "passed", "failed"
PINNED_LABEL = "snapshot-policy/pinned-until"
PIN_NOTE_LABEL = "snapshot-policy/pin-note"
PIN_PROTECTED_LABEL = "snapshot-policy/pin-protected"
PINNED_TAG_PREFIX = "snapshot-policy-pinned-until-"
PIN_NOTE_TAG_PREFIX = "snapshot-policy-pin-note-"
PENDING_LABEL = "snapshot-policy/pending-delete"
PENDING_TAG_PREFIX = "snapshot-policy-pending-delete-"
NOTE_LIMIT = 63
HOSTNAME_LIMIT = 63

NOTHING_PENDING: Mapping[str, datetime] = MappingProxyType({})
ADOPTION_CLOCK_TOLERANCE = timedelta(minutes=1)
"""How far the cloud's date of a snapshot may fall outside the window of a journal entry
(before its start, after its creation timeout) and it still be adopted. The entry is written
on this machine just before the start is sent, so a snapshot it made is dated after it but
for the two clocks' disagreement; a minute covers any clock kept by NTP. Beyond that the
snapshot is not adopted: it stays unmanaged and is kept, the reading that deletes less."""


def marker_labels(target: Target) -> dict[str, str]:
    """Return the marker that shows a snapshot was made by this tool for `target` and by
    which configuration: the DigitalOcean tags (labels with an empty value), or the Hetzner
    labels naming its server and owner. The owner comes first, so a tagging cut short never
    leaves our marker without it."""
    if target.provider == DIGITALOCEAN:
        owner = {OWNER_TAG_PREFIX + target.owner: ""} if target.owner else {}
        return {**owner, DIGITALOCEAN_TAG: ""}
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        SERVER_ID_LABEL: target.server_id,
        TARGET_LABEL: _label_value(target.name),
    }
    return {**labels, OWNER_LABEL: target.owner} if target.owner else labels


def _label_value(text: str) -> str:
    """Return `text` shaped as a Hetzner label value: 63 characters of [A-Za-z0-9._-], alphanumeric
    ends."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def name_pattern_regex(target: Target) -> re.Pattern[str]:
    """Return a regex matching exactly the names the target's pattern produces."""
    return _name_regex(target.name_pattern, target.server_name, target.server_id, target.name)


@functools.lru_cache(maxsize=1024)
def _name_regex(
    pattern: str, server_name: str, server_id: str, target_name: str
) -> re.Pattern[str]:
    values = {"server_name": server_name, "server_id": server_id, "target": target_name}
    parts = []
    for literal, field_name, _, _ in string.Formatter().parse(pattern):
        parts.append(re.escape(literal))
        if field_name == "timestamp":
            parts.append(r"\d{14}")
        elif field_name is not None:
            parts.append(re.escape(values[field_name]))
    return re.compile("".join(parts))


def owners_marked(provider: str, cloud: CloudSnapshot) -> frozenset[str]:
    """Return the owners marked on a snapshot (none for one made before owners were)."""
    if provider == DIGITALOCEAN:
        prefix = OWNER_TAG_PREFIX.lower()
        return frozenset(
            tag[len(prefix) :] for tag in cloud.labels if tag.lower().startswith(prefix)
        )
    owner = cloud.labels.get(OWNER_LABEL)
    return frozenset() if owner is None else frozenset({owner})


def _others(provider: str, owners: frozenset[str], owner: str) -> list[str]:
    """The owners in `owners` that are not `owner`, in order."""
    if provider == DIGITALOCEAN:
        return sorted(o for o in owners if o.lower() != owner.lower())
    return sorted(o for o in owners if o != owner)


def has_marker(provider: str, cloud: CloudSnapshot, owner: str | None = None) -> bool:
    """True when the snapshot carries the mark this tool puts on what it makes, and no other
    configuration's than `owner`'s; with None, whichever configuration's it is."""
    if owner is not None and _others(provider, owners_marked(provider, cloud), owner):
        return False
    if provider == DIGITALOCEAN:
        return DIGITALOCEAN_TAG in cloud.labels
    return cloud.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def by_server(listing: Iterable[CloudSnapshot]) -> dict[str | None, list[CloudSnapshot]]:
    """Return an account listing grouped by the server each snapshot was made from, in
    listing order within each server (None: the API did not say).

    `snapshots_for(target, by_server(listing).get(target.server_id, []))` equals
    `snapshots_for(target, listing)`, but costs the server's snapshots, not the account's:
    grouping once per account keeps reading a fleet linear in its size (docs/promises.md §8).
    """
    grouped: dict[str | None, list[CloudSnapshot]] = {}
    for snapshot in listing:
        grouped.setdefault(snapshot.server_id, []).append(snapshot)
    return grouped


def snapshots_for(
    target: Target,
    listing: Iterable[CloudSnapshot],
    pending: Mapping[str, datetime] = NOTHING_PENDING,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
) -> list[Snapshot]:
    """Return the snapshots of the target's server from an account listing (or the part of
    it `by_server` gives for that server), each classified.

    `pending` are names this tool started for the server and has not marked yet, with their
    start times (journal.py); `creation_timeout` bounds how long after its start a snapshot
    can have been made (`settings.snapshot_creation_timeout`).
    """
    return [
        classify(target, s, pending, creation_timeout)
        for s in listing
        if s.server_id == target.server_id
    ]


def classify(
    target: Target,
    cloud: CloudSnapshot,
    pending: Mapping[str, datetime] = NOTHING_PENDING,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
) -> Snapshot:
    """Return `cloud` as a Snapshot of `target`'s server, managed or not, and why.

    Another configuration's mark wins over every other proof. An unmarked snapshot is
    adopted from the journal only if its name was started for this server and the cloud
    dates it within that start's creation window, so a snapshot that existed before the
    entry was written is never taken; then by its legacy name, where the target adopts them.
    """
    others = _others(target.provider, owners_marked(target.provider, cloud), target.owner)
    unmarked = False
    if others:
        managed, ownership = False, _another_configuration(target, others)
    else:
        managed, ownership = (
            _digitalocean_proof(target, cloud)
            if target.provider == DIGITALOCEAN
            else _hetzner_proof(target, cloud)
        )
        if managed and target.owner:
            marked = owners_marked(target.provider, cloud)
            ownership += (
                f", owner {target.owner}"
                if marked
                else (
                    "; no owner mark (made by a version before owners were recorded): "
                    "adopted as this configuration's"
                )
            )
        if not managed and cloud.name in pending:
            unmarked, ownership = _journalled(cloud, pending[cloud.name], creation_timeout)
            managed = unmarked
        if (
            not managed
            and target.adopt_legacy_names
            and name_pattern_regex(target).fullmatch(cloud.name)
        ):
            managed, ownership = (
                True,
                f"adopted: named exactly as {target.name_pattern!r} names them "
                "(as snapshots.py did)",
            )
        if not managed and made_by_autobackup(target, cloud):
            managed, ownership = True, AUTOBACKUP_ADOPTED
        elif not managed and made_by_autobackup(target, _with_autobackup_label(cloud)):
            ownership += (
                "; named as hcloud-snapshot-as-backup names them, but without its AUTOBACKUP "
                "label (removed to keep it for good?): not adopted"
            )
    return Snapshot(
        id=cloud.id,
        name=cloud.name,
        created=cloud.created,
        server_id=cloud.server_id or "",
        managed=managed,
        ownership=ownership,
        protected=cloud.protected,
        creating=cloud.creating,
        unmarked=unmarked,
        size_gb=cloud.size_gb,
        note=_name_note(target, cloud) if managed and ownership != AUTOBACKUP_ADOPTED else "",
        drilled=drill_mark(target.provider, cloud.labels),
        pin=pin_mark(target.provider, cloud.labels),
        pending_delete=pending_mark(target.provider, cloud.labels),
        cloud=cloud,
    )


AUTOBACKUP_ADOPTED = (
    "adopted: made by hcloud-snapshot-as-backup (label AUTOBACKUP, "
    "named as it names them, the server's name and the Unix time)"
)


def made_by_autobackup(target: Target, cloud: CloudSnapshot) -> bool:
    """True for a snapshot hcloud-snapshot-as-backup made of the target's server, where the
    target reads that tool's labels (`server_overrides: autobackup`): its `AUTOBACKUP` label,
    made from this server, and named exactly `<server name>-<Unix time>` (its default
    `%name%-%timestamp%`, ten digits). Its label alone is not proof enough: one copied by
    hand, or a description that merely contains the server's name, adopts nothing; a snapshot
    whose `AUTOBACKUP` label was removed is one its operator chose to keep (that tool's own
    rule), and stays unmanaged."""
    return (
        target.server_overrides == AUTOBACKUP
        and target.provider == HETZNER
        and AUTOBACKUP_LABEL in cloud.labels
        and cloud.server_id == target.server_id
        and _autobackup_name(target.server_name).fullmatch(cloud.name) is not None
    )


def _with_autobackup_label(cloud: CloudSnapshot) -> CloudSnapshot:
    return replace(cloud, labels={**cloud.labels, AUTOBACKUP_LABEL: ""})


@functools.lru_cache(maxsize=1024)
def _autobackup_name(server_name: str) -> re.Pattern[str]:
    return re.compile(re.escape(server_name) + r"-\d{10}")


def _another_configuration(target: Target, others: list[str]) -> str:
    owners = ", ".join(others)
    mine = f"this one is {target.owner}" if target.owner else "this one has none"
    return (
        f"another configuration's (owner {owners}; {mine}); if that was this configuration "
        f'before its file or folder moved, set settings.owner: "{others[0]}"'
    )


def _journalled(
    cloud: CloudSnapshot, started: datetime, creation_timeout: timedelta
) -> tuple[bool, str]:
    """Whether an unmarked snapshot whose name the journal holds was made by that start."""
    when = f"the start of {started.isoformat()}"
    if cloud.created < started - ADOPTION_CLOCK_TOLERANCE:
        return (
            False,
            f"not marked; named as {when} in the journal, but it existed before it: not adopted",
        )
    if cloud.created > started + creation_timeout + ADOPTION_CLOCK_TOLERANCE:
        return (
            False,
            f"not marked; named as {when} in the journal, "
            "but made after that start's creation timeout: not adopted",
        )
    return True, "adopted: started by an interrupted run of this tool; it will be marked"


def _name_note(target: Target, cloud: CloudSnapshot) -> str:
    """A hint for a managed snapshot whose name this target would not have made."""
    if name_pattern_regex(target).fullmatch(cloud.name):
        return ""
    return (
        f"its name does not fit {target.name_pattern!r} for this server: "
        "marked by hand, or made before a rename or a change of snapshot_name?"
    )


def _hetzner_proof(target: Target, cloud: CloudSnapshot) -> tuple[bool, str]:
    if cloud.labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return False, f"no {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} label"
    if cloud.labels.get(SERVER_ID_LABEL) != target.server_id:
        return False, f"label {SERVER_ID_LABEL} is not {target.server_id}"
    return (
        True,
        f"labels {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} and {SERVER_ID_LABEL}={target.server_id}",
    )


def _digitalocean_proof(target: Target, cloud: CloudSnapshot) -> tuple[bool, str]:
    kind = "volume" if target.volume_of else "droplet"  # volumes: true (§5.18)
    if DIGITALOCEAN_TAG not in cloud.labels:
        return False, f"not tagged {DIGITALOCEAN_TAG}"
    if cloud.server_id != target.server_id:
        return (
            False,
            f"tagged {DIGITALOCEAN_TAG}, but made from {kind} {cloud.server_id}, "
            f"not {target.server_id}",
        )
    return True, f"tagged {DIGITALOCEAN_TAG}, made from {kind} {target.server_id}"


def drill_server_labels(provider: str, owner: str, target: str, snapshot_id: str) -> dict[str, str]:
    """Return the marks a drill server is created with: the only servers this tool may
    ever delete carry them (docs/promises.md §5). DigitalOcean: tags (empty values), the
    owner's first as on snapshots. Raise ValueError without an owner: a server nobody could
    prove ours could never be deleted, so it is never made."""
    if not owner:
        raise ValueError("a drill server needs this configuration's owner (settings.owner)")
    if provider == DIGITALOCEAN:
        return {OWNER_TAG_PREFIX + owner: "", DRILL_TAG: ""}
    return {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        DRILL_LABEL: DRILL_LABEL_VALUE,
        OWNER_LABEL: owner,
        TARGET_LABEL: _label_value(target),
        DRILL_SNAPSHOT_LABEL: _label_value(snapshot_id),
    }


def is_drill_server(provider: str, labels: Mapping[str, str], owner: str) -> bool:
    """True only for a server with the drill mark, this configuration's owner mark and no
    other owner's: the first of the three conditions before a server is deleted. Marks are
    compared exactly (DigitalOcean tags regardless of case, as DigitalOcean does): a tag that
    merely starts like ours proves nothing."""
    if not owner:
        return False
    if provider == DIGITALOCEAN:
        tags = {tag.lower() for tag in labels}
        prefix = OWNER_TAG_PREFIX.lower()
        owners = {tag[len(prefix) :] for tag in tags if tag.startswith(prefix)}
        return DRILL_TAG in tags and owners == {owner.lower()}
    return (
        labels.get(DRILL_LABEL) == DRILL_LABEL_VALUE
        and labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
        and labels.get(OWNER_LABEL) == owner
    )


def marks_another_owner(provider: str, labels: Mapping[str, str], owner: str) -> bool:
    """True when a server's labels (DigitalOcean: tags) carry an owner mark that is not
    `owner`'s: another configuration's server, whatever its name."""
    if provider == DIGITALOCEAN:
        prefix = OWNER_TAG_PREFIX.lower()
        owners = {t.lower()[len(prefix) :] for t in labels if t.lower().startswith(prefix)}
        return bool(owners - {owner.lower()})
    return labels.get(OWNER_LABEL, owner) != owner


def drill_result_labels(provider: str, passed: bool, on: date) -> dict[str, str]:
    """Return the mark a drill leaves on its snapshot, merged into the labels it has (Hetzner:
    replacing the last result) or added to its tags (DigitalOcean)."""
    result = f"{PASSED if passed else FAILED}-{on.isoformat()}"
    if provider == DIGITALOCEAN:
        return {DRILLED_TAG_PREFIX + result: ""}
    return {DRILLED_LABEL: result}


_RESULT = re.compile(r"(passed|failed)-(\d{4}-\d{2}-\d{2})")


def drill_mark(provider: str, labels: Mapping[str, str]) -> DrillMark | None:
    """Return the last drill result marked on a snapshot; None when it carries none (or only
    malformed ones, which prove nothing). Among DigitalOcean's accumulated tags the newest
    day wins, and a failure wins a day that also has a pass."""
    if provider == DIGITALOCEAN:
        prefix = DRILLED_TAG_PREFIX.lower()
        texts = [tag.lower()[len(prefix) :] for tag in labels if tag.lower().startswith(prefix)]
    else:
        texts = [labels[DRILLED_LABEL]] if DRILLED_LABEL in labels else []
    marks = [mark for mark in map(_parse_result, texts) if mark is not None]
    # newest day first; on one day, failed (passed False) before passed
    return max(marks, key=lambda m: (m.on, not m.passed), default=None)


def _parse_result(text: str) -> DrillMark | None:
    found = _RESULT.fullmatch(text)
    if found is None:
        return None
    try:
        on = date.fromisoformat(found[2])
    except ValueError:
        return None
    return DrillMark(passed=found[1] == PASSED, on=on)


def drill_server_name(target: Target, now: datetime) -> str:
    """Return the name of `target`'s drill server made at `now`:
    `drill-<target slug>-<server id>-<YYYYmmddHHMMSS>`, a hostname both clouds accept (at
    most 63 characters of a-z, 0-9 and dashes): the slug is cut to fit, never the server id
    or the time, so two drills of one server never share a name unless made in one second.
    `now` is taken as UTC."""
    stamp = _utc(now).strftime("%Y%m%d%H%M%S")
    server = _slug(target.server_id) or "server"
    room = HOSTNAME_LIMIT - len(f"drill--{server}-{stamp}")
    slug = _slug(target.name)[: max(room, 0)].strip("-") or "target"
    return f"drill-{slug}-{server}-{stamp}"[:HOSTNAME_LIMIT].rstrip("-")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment


def adopted(snapshot: Snapshot) -> bool:
    """Managed because snapshots.py named it so (or a killed run of ours started it), not by
    our marker: what `classify` words as adopted."""
    return snapshot.managed and snapshot.ownership.startswith("adopted")


# -- pins and pending deletions (issue 23, item 2) -------------------------------------------


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def _tagged(labels: Mapping[str, str], prefix: str) -> list[str]:
    """The rest of each DigitalOcean tag starting with `prefix` (regardless of case)."""
    low = prefix.lower()
    return [tag[len(low) :] for tag in labels if tag.lower().startswith(low)]


def pin_mark(provider: str, labels: Mapping[str, str]) -> Pin | None:
    """Return the pin marked on a snapshot; None without one (or with only marks that do not
    parse: `unreadable_marks` names them). Among DigitalOcean's tags the latest day wins."""
    if provider == DIGITALOCEAN:
        days = [d for d in map(_day, _tagged(labels, PINNED_TAG_PREFIX)) if d is not None]
        notes = sorted(_tagged(labels, PIN_NOTE_TAG_PREFIX))
        if not days:
            return None
        return Pin(max(days), notes[0] if notes else "")
    until = _day(labels.get(PINNED_LABEL, ""))
    if until is None:
        return None
    return Pin(
        until,
        labels.get(PIN_NOTE_LABEL, ""),
        protected_by_us=labels.get(PIN_PROTECTED_LABEL) == "true",
    )


def pending_mark(provider: str, labels: Mapping[str, str]) -> date | None:
    """Return the day from which a snapshot marked pending deletion may be deleted; None
    without a mark that parses (a garbled one counts as none, never as due)."""
    if provider == DIGITALOCEAN:
        days = [d for d in map(_day, _tagged(labels, PENDING_TAG_PREFIX)) if d is not None]
        return max(days, default=None)
    return _day(labels.get(PENDING_LABEL, ""))


def unreadable_marks(provider: str, labels: Mapping[str, str]) -> tuple[str, ...]:
    """The pin and pending-delete marks on a snapshot that do not parse, as written."""
    if provider == DIGITALOCEAN:
        return tuple(
            sorted(
                prefix + rest
                for prefix in (PINNED_TAG_PREFIX, PENDING_TAG_PREFIX)
                for rest in _tagged(labels, prefix)
                if _day(rest) is None
            )
        )
    return tuple(
        f"{key}={labels[key]}"
        for key in (PINNED_LABEL, PENDING_LABEL)
        if key in labels and _day(labels[key]) is None
    )


def safe_note(provider: str, note: str) -> str:
    """`note` as a label value (Hetzner) or the rest of a tag (DigitalOcean) can carry it: at
    most 63 characters, others replaced by `_`."""
    if provider == DIGITALOCEAN:
        return re.sub(r"[^A-Za-z0-9_:-]", "_", note)[:NOTE_LIMIT].strip("_")
    return _label_value(note)


def pin_keys(provider: str, labels: Mapping[str, str]) -> list[str]:
    """Every pin mark a snapshot carries, valid or not: what unpin takes off."""
    if provider == DIGITALOCEAN:
        prefixes = (PINNED_TAG_PREFIX.lower(), PIN_NOTE_TAG_PREFIX.lower())
        return sorted(tag for tag in labels if tag.lower().startswith(prefixes))
    return [k for k in (PINNED_LABEL, PIN_NOTE_LABEL, PIN_PROTECTED_LABEL) if k in labels]


def pin_labels(provider: str, until: date, note: str = "", protected: bool = False) -> dict:
    """The marks `pin` writes (`note` already safe_note'd)."""
    if provider == DIGITALOCEAN:
        note_tag = {PIN_NOTE_TAG_PREFIX + note: ""} if note else {}
        return {PINNED_TAG_PREFIX + until.isoformat(): "", **note_tag}
    labels = {PINNED_LABEL: until.isoformat()}
    labels.update({PIN_NOTE_LABEL: note} if note else {})
    labels.update({PIN_PROTECTED_LABEL: "true"} if protected else {})
    return labels


def pending_keys(provider: str, labels: Mapping[str, str]) -> list[str]:
    """Every pending-delete mark a snapshot carries, valid or not: what unmarking takes off."""
    if provider == DIGITALOCEAN:
        return sorted(t for t in labels if t.lower().startswith(PENDING_TAG_PREFIX.lower()))
    return [PENDING_LABEL] if PENDING_LABEL in labels else []


def pending_labels(provider: str, day: date) -> dict[str, str]:
    """The mark of a snapshot pending deletion from `day`."""
    if provider == DIGITALOCEAN:
        return {PENDING_TAG_PREFIX + day.isoformat(): ""}
    return {PENDING_LABEL: day.isoformat()}
