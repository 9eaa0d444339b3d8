"""Pins and soft deletion: what becomes of a snapshot once retention has spoken
(docs/promises.md §5.16; issue 23, item 2).

Pure: the caller gives the rules that keep the snapshot (`retention.select`), the day it is
in the target's timezone, and, under `settings.soft_delete`, the day a snapshot marked now
may be deleted from. The rules it owns:

- a pin whose day has not passed keeps the snapshot ("pinned until 2027-01-31"), whatever
  the rules say; it is never deleted nor marked pending;
- a pin that has passed is ignored; if the tool set Hetzner's delete protection for it, apply
  takes the pin off and lifts that protection (UNPIN) — and deletes nothing of it in that
  run, since it was still protected when this run looked;
- without soft deletion, what no rule keeps is deleted (DELETE), as it always was;
- with it, what no rule keeps is marked (MARK_PENDING), deleted only once its mark's day has
  come (DELETE), and left alone meanwhile; a marked snapshot a rule keeps again is unmarked
  (UNMARK_PENDING); a mark that does not parse counts as none (marked again, full grace);
- a pin mark that does not parse keeps the snapshot: the reading that deletes less.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from snapshot_policy.core import ownership
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import ActionKind, Pin, PlanAction, Snapshot, Target


def today(now: datetime, zone: ZoneInfo) -> date:
    """The run's day in the target's timezone: pins and pending marks are days there."""
    return now.astimezone(zone).date()


def pending_from(now: datetime, zone: ZoneInfo, grace: Duration | None) -> date | None:
    """The day a snapshot marked pending at `now` may be deleted from; None: no soft delete."""
    if grace is None:
        return None
    return (now.astimezone(zone) + grace.as_timedelta()).date()


def pinned(snapshot: Snapshot, day: date) -> bool:
    """Its pin holds on `day` (inclusive)."""
    return snapshot.pin is not None and snapshot.pin.until >= day


def pin_words(pin: Pin) -> str:
    """`pinned until 2027-01-31 (audit-2026)`: how the plan and status name a pin."""
    return f"pinned until {pin.until.isoformat()}" + (f" ({pin.note})" if pin.note else "")


def _labels(snapshot: Snapshot) -> dict[str, str]:
    return snapshot.cloud.labels if snapshot.cloud is not None else {}


def mark_problems(target: Target, snapshots: list[Snapshot]) -> tuple[str, ...]:
    """A problem line for each managed snapshot carrying a pin or pending mark that does not
    parse: ignored (a pin's snapshot kept), said so that someone fixes it."""
    found = []
    for snapshot in snapshots:
        marks = ownership.unreadable_marks(target.provider, _labels(snapshot))
        if snapshot.managed and marks:
            found.append(
                f"snapshot {snapshot.name} ({snapshot.id}) carries a mark that cannot be read: "
                f"{', '.join(marks)}; a pin mark keeps it, a pending-delete mark counts as none. "
                f"Fix it with `snapshot-policy pin {snapshot.id} --until YYYY-MM-DD`, "
                f"`unpin {snapshot.id}` or `undelete {snapshot.id}`"
            )
    return tuple(found)


def decide(
    target: Target,
    snapshot: Snapshot,
    rules: tuple[str, ...],
    day: date,
    marked_from: date | None,
    grace: Duration | None = None,
) -> PlanAction:
    """The action for a managed, finished snapshot that retention kept with `rules` (none:
    it let it go), on `day`; `marked_from` is the pending day of a mark made now (None
    without soft deletion), `grace` the soft deletion's."""
    pin = snapshot.pin
    if pin is not None and pin.until >= day:
        rules = (*rules, pin_words(pin))
    labels = _labels(snapshot)
    if pin is not None and pin.until < day and pin.protected_by_us and snapshot.protected:
        then = (
            "kept by: " + ", ".join(rules)
            if rules
            else "no retention rule keeps it: a later run deletes it"
        )
        return PlanAction(
            ActionKind.UNPIN,
            snapshot,
            f"pin expired on {pin.until.isoformat()}: the pin and the delete protection it "
            f"set are taken off; {then}",
            rules,
        )
    if rules:
        kept = "kept by: " + ", ".join(rules)
        if ownership.pending_keys(target.provider, labels):
            was = (
                f" (from {snapshot.pending_delete.isoformat()})" if snapshot.pending_delete else ""
            )
            return PlanAction(
                ActionKind.UNMARK_PENDING,
                snapshot,
                f"{kept}; its pending deletion{was} is taken back",
                rules,
            )
        return PlanAction(ActionKind.KEEP, snapshot, kept, rules)
    if any(  # beside an expired pin tag too (DigitalOcean's accumulate)
        mark.startswith((ownership.PINNED_LABEL, ownership.PINNED_TAG_PREFIX))
        for mark in ownership.unreadable_marks(target.provider, labels)
    ):
        return PlanAction(
            ActionKind.SKIP, snapshot, "its pin mark cannot be read: kept until it is fixed"
        )
    if snapshot.protected:
        return PlanAction(ActionKind.SKIP, snapshot, "protected; no retention rule keeps it")
    if marked_from is None:
        return PlanAction(ActionKind.DELETE, snapshot, "no retention rule keeps it")
    due, early = _ours(snapshot, ZoneInfo(target.timezone), grace)
    if due is not None and due <= day:
        return PlanAction(
            ActionKind.DELETE,
            snapshot,
            f"no retention rule keeps it; pending deletion since {due.isoformat()}",
        )
    if due is not None:
        return PlanAction(
            ActionKind.SKIP,
            snapshot,
            f"pending deletion: deleted from {due.isoformat()} unless a rule keeps it again",
        )
    return PlanAction(
        ActionKind.MARK_PENDING,
        replace(snapshot, pending_delete=marked_from),
        f"no retention rule keeps it; marked pending deletion, deleted from "
        f"{marked_from.isoformat()} (settings.soft_delete){early}",
    )


def _ours(snapshot: Snapshot, zone: ZoneInfo, grace: Duration | None) -> tuple[date | None, str]:
    """The snapshot's pending day if this tool could have marked it so, and else None with
    why. A mark is written no sooner than the snapshot exists, for a day `grace` later: one
    dated before that (set by hand, or by a run whose clock was behind) would skip the grace
    the policy promises, so it counts as no mark and is written again in full (§5.16)."""
    due = snapshot.pending_delete
    earliest = pending_from(snapshot.created, zone, grace)
    if due is None or earliest is None or due >= earliest:
        return due, ""
    return None, (
        f"; its mark of {due.isoformat()} is not counted: it is before {earliest.isoformat()}, "
        f"the first day this tool marks a snapshot made {snapshot.created:%Y-%m-%d %H:%M %Z} "
        f"with a grace of {grace}"
    )


def relabel(provider: str, action: PlanAction) -> tuple[dict[str, str], list[str], bool]:
    """What carrying out a MARK_PENDING, UNMARK_PENDING or UNPIN action writes: the marks to
    add, the keys (DigitalOcean: tags) to take off, and whether to lift the delete protection
    first (an UNPIN whose pin set it). A mark replaces every earlier one, garbled ones too."""
    snapshot = action.snapshot
    labels = _labels(snapshot)
    if action.kind is ActionKind.MARK_PENDING:
        add = ownership.pending_labels(provider, snapshot.pending_delete)
        stale = [k for k in ownership.pending_keys(provider, labels) if k not in add]
        return add, stale, False
    if action.kind is ActionKind.UNMARK_PENDING:
        return {}, ownership.pending_keys(provider, labels), False
    if action.kind is ActionKind.UNPIN:
        pin = snapshot.pin
        lift = pin is not None and pin.protected_by_us and snapshot.protected
        return {}, ownership.pin_keys(provider, labels), lift
    raise ValueError(f"not a relabelling: {action.kind}")
