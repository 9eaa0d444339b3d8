"""`pin`, `unpin` and `undelete`: one snapshot's marks, written by hand (docs/promises.md
§5.16; issue 23, item 2).

Only a snapshot this configuration manages is touched: it is looked for among the snapshots
of the configured targets (one listing per account, as plan reads them), classified as plan
classifies it, and read again by id just before its marks are written, so a mark made
meanwhile (by another run, by hand) is neither lost nor repeated. The command holds the run
lock: apply writes labels too (Hetzner's are written back whole), so the two never interleave.

On Hetzner a pin also sets the image's delete protection when it had none, and records that
it did (`snapshot-policy/pin-protected=true`); unpin lifts the protection only then. The
protection is set after the pin's labels, and the label saying so is written last: a failure
between them leaves a pin without protection, never a protection nobody knows to lift.
DigitalOcean has no protection for snapshots: the pin holds against this tool only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from snapshot_policy.core import ownership, pins
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    CloudSnapshot,
    ProviderError,
    Snapshot,
    Target,
)
from snapshot_policy.edges.providers import Provider
from snapshot_policy.engine.observe import observe
from snapshot_policy.state.audit import AuditLog

log = logging.getLogger(__name__)
NO_PROTECTION = (
    "DigitalOcean has no delete protection for snapshots: the pin keeps it from this tool's "
    "deletions only"
)


class Refused(Exception):
    """The command cannot do what it was asked; the message says why and what to do."""


@dataclass
class Done:
    """What the command did, line by line; `ok` false when part of it failed."""

    lines: list[str] = field(default_factory=list)
    ok: bool = True


@dataclass(frozen=True)
class Found:
    target: Target
    snapshot: Snapshot
    provider: Provider


def find(context, now: datetime, snapshot_id: str) -> Found:
    """The managed snapshot `snapshot_id` of a configured target, as the cloud shows it now.
    Raise Refused for one that is not found, not managed, or being made."""
    settings = context.settings
    observation = observe(
        context.loaded.targets,
        context.connect,
        orphans=False,
        journal=context.journal(now),
        now=now,
        creation_timeout=timedelta(seconds=settings.snapshot_creation_timeout),
    )
    seen = [
        (target, snapshot)
        for target, snapshots in observation.observed
        for snapshot in snapshots
        if snapshot.id == snapshot_id
    ]
    managed = [(t, s) for t, s in seen if s.managed]
    if not managed:
        if seen:
            target, snapshot = seen[0]
            raise Refused(
                f"snapshot {snapshot_id} ({snapshot.name}) is not managed by this "
                f"configuration ({snapshot.ownership}): only a snapshot it made may be "
                "pinned, unpinned or undeleted"
            )
        unread = "; ".join(f"{f.target}: {f.reason}" for f in observation.failures)
        raise Refused(
            f"no snapshot {snapshot_id} among the snapshots of the configured targets"
            + (f" (not read: {unread})" if unread else "")
            + "; `snapshot-policy plan` lists them with their ids"
        )
    target, _ = managed[0]
    provider = observation.providers[target.account]
    fresh = provider.get_snapshot(snapshot_id)
    if fresh is None:
        raise Refused(f"snapshot {snapshot_id} is gone from {target.account}")
    snapshot = ownership.classify(target, fresh)
    if not snapshot.managed:
        raise Refused(
            f"snapshot {snapshot_id} is no longer managed by this configuration "
            f"({snapshot.ownership})"
        )
    if snapshot.creating:
        raise Refused(f"snapshot {snapshot_id} is still being made: try again once it is done")
    return Found(target, snapshot, provider)


def _what(found: Found) -> str:
    t, s = found.target, found.snapshot
    return f"{s.name} (id {s.id}, target {t.name}, {t.provider} account {t.account})"


def _labels(snapshot: Snapshot) -> dict[str, str]:
    cloud: CloudSnapshot | None = snapshot.cloud
    return cloud.labels if cloud is not None else {}


def pin(found: Found, until: date, note: str, now: datetime, audit: AuditLog) -> Done:
    """Pin `found` until `until` (inclusive, in its target's timezone). Raise Refused for a
    day already past there."""
    t, s, provider = found.target, found.snapshot, found.provider
    today = pins.today(now, ZoneInfo(t.timezone))
    if until < today:
        raise Refused(
            f"--until {until.isoformat()} is in the past (today is {today.isoformat()} in "
            f"{t.timezone}, target {t.name}'s timezone): give a day from today on"
        )
    safe = ownership.safe_note(t.provider, note)
    ours = s.pin is not None and s.pin.protected_by_us and s.protected
    add = ownership.pin_labels(t.provider, until, safe, protected=ours)
    stale = [k for k in ownership.pin_keys(t.provider, _labels(s)) if k not in add]
    done = Done()
    provider.set_snapshot_labels(s.id, add, stale)
    noted = f" ({safe})" if safe else ""
    done.lines.append(f"pinned {_what(found)} until {until.isoformat()}{noted}")
    if safe != note:
        done.lines.append(f"  the note is written as {safe!r}: what a label or tag can hold")
    if t.provider == DIGITALOCEAN:
        done.lines.append(f"  {NO_PROTECTION}")
    elif s.protected:
        done.lines.append(
            "  delete protection: on already"
            + (
                " (set by an earlier pin)"
                if ours
                else "; it was not set by pin, so unpin leaves it"
            )
        )
    else:
        done.ok = _protect(found, done)
    audit.record("pinned", t, s, f"pinned until {until.isoformat()}{noted}", now)
    return done


def _protect(found: Found, done: Done) -> bool:
    """Set Hetzner's delete protection, then the label saying pin set it; on failure of the
    label, lift it again (best effort), so no protection is left that nobody may lift."""
    s, provider = found.snapshot, found.provider
    try:
        provider.protect_snapshot(s.id, True)
    except ProviderError as error:
        done.lines.append(f"  delete protection could not be set: {error}; the pin holds")
        return False
    try:
        provider.set_snapshot_labels(s.id, {ownership.PIN_PROTECTED_LABEL: "true"}, [])
    except ProviderError as error:
        try:
            provider.protect_snapshot(s.id, False)
            undone = "lifted again"
        except ProviderError:
            undone = "still set: lift it in the console"
        done.lines.append(
            f"  delete protection was set, but its label could not be written ({error}); "
            f"the protection is {undone}"
        )
        return False
    done.lines.append("  delete protection: set (unpin, or the pin's expiry, lifts it)")
    return True


def unpin(found: Found, now: datetime, audit: AuditLog) -> Done:
    """Take the pin off `found`, lifting the delete protection only if pin set it."""
    t, s, provider = found.target, found.snapshot, found.provider
    keys = ownership.pin_keys(t.provider, _labels(s))
    if not keys:
        raise Refused(f"snapshot {s.id} ({s.name}) is not pinned")
    done = Done()
    ours = t.provider == HETZNER and s.pin is not None and s.pin.protected_by_us
    if ours and s.protected:
        provider.protect_snapshot(s.id, False)  # first: its label is the proof pin set it
    provider.set_snapshot_labels(s.id, {}, keys)
    was = f" (it was pinned until {s.pin.until.isoformat()})" if s.pin else ""
    done.lines.append(f"unpinned {_what(found)}{was}")
    if t.provider == HETZNER and s.protected:
        done.lines.append(
            "  delete protection: lifted (pin had set it)"
            if ours
            else "  delete protection: left on (pin did not set it)"
        )
    done.lines.append("  retention decides for it from the next apply")
    audit.record("unpinned", t, s, "unpinned by hand" + was, now)
    return done


def undelete(found: Found, now: datetime, audit: AuditLog) -> Done:
    """Take the pending-delete mark off `found`."""
    t, s, provider = found.target, found.snapshot, found.provider
    keys = ownership.pending_keys(t.provider, _labels(s))
    if not keys:
        raise Refused(f"snapshot {s.id} ({s.name}) is not marked pending deletion")
    provider.set_snapshot_labels(s.id, {}, keys)
    was = f" (from {s.pending_delete.isoformat()})" if s.pending_delete else ""
    done = Done()
    done.lines.append(f"undeleted {_what(found)}: its pending deletion{was} is taken back")
    done.lines.append(
        "  if no rule keeps it, the next apply marks it again with a full grace; "
        f"to keep it, pin it: snapshot-policy pin {s.id} --until YYYY-MM-DD"
    )
    audit.record("undeleted", t, s, "pending deletion taken back by hand" + was, now)
    return done
