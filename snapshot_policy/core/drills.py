"""Restore drills (issue 22): when a target's drill is due, which snapshot it restores, to
which machine type and where, what that costs, and which drill servers a run must delete.

Pure: the run state's last drills, the listings and the time are passed in; nothing here
reads a clock, a file or a cloud.

What a drill costs, as the clouds documented it when read (2026-12-07):

- Hetzner bills a server for every hour it exists, a started hour counting whole ("partial
  hours are rounded up": docs.hetzner.com, Cloud billing FAQ). A drill of 20 minutes costs
  one hour of its server type.
- DigitalOcean bills Droplets per second since 2026-01-01, with a minimum of 60 seconds or
  $0.01, whichever is higher (DigitalOcean's changelog; before, by the hour, an hour at least).
  A drill of 20 minutes on a $0.00893/h size costs the minimum, $0.01.

The estimate takes the longest a drill that runs its course keeps its server: the boot
timeout, the probe's timeout when there is a probe, and a minute to delete it
(`drill_duration`). It is an upper estimate: most drills are over sooner, and on Hetzner any
drill under an hour costs the same. The price is the machine type's hourly price as the
provider adapter reads it from the cloud's API (DigitalOcean `price_hourly`, Hetzner the
server type's hourly price in that location); a Hetzner primary IPv4, billed apart, is not
in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

from snapshot_policy.core import ownership
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    Drill,
    DrillPlan,
    MachineType,
    MadeServer,
    OpenDrill,
    Snapshot,
    Target,
)

# A run started by cron a little earlier than the last one must still find a drill due.
_EVERY_TOLERANCE = 0.1
_MAX_TOLERANCE = timedelta(hours=1)
# A last drill or a snapshot dated this far past `now` says a clock is wrong: not believed.
CLOCK_TOLERANCE = timedelta(minutes=5)
DELETE_MARGIN = timedelta(minutes=1)
"""What `drill_duration` allows for the deletion once the probe is over."""
DIGITALOCEAN_MINIMUM_SECONDS = 60
DIGITALOCEAN_MINIMUM_CHARGE = 0.01
SETTLE_MARGIN = timedelta(minutes=15)
"""How old a journaled drill server must be before its absence from a complete listing
crosses it off: a server the cloud made at the last moment of a killed run shows up in
the listing well within this (the default boot timeout)."""


class DrillRecord(Protocol):
    """A target's last drill as the run state keeps it (state.runstate.LastDrill)."""

    when: datetime
    passed: bool


def drill_due(
    target: Target,
    last: DrillRecord | None,
    snapshots: Sequence[Snapshot],
    now: datetime,
) -> tuple[bool, str]:
    """Return whether `target`'s drill is due at `now`, and a sentence saying why or why not.

    Due `drill.every` after the last drill: the newer of the run state's record (`last`) and
    the newest drill mark on the target's managed snapshots (a mark gives only the day, taken
    from its start, so the next drill comes rather early than late). Never drilled: due. A
    record dated after `now` says the clock went back and is not believed. A target without
    a drill is never due.
    """
    drill = target.drill
    if drill is None:
        return False, "no drill configured"
    zone = ZoneInfo(target.timezone)
    seen: list[tuple[datetime, bool]] = []
    if last is not None and last.when <= now + CLOCK_TOLERANCE:
        seen.append((last.when, last.passed))
    for snapshot in snapshots:
        if snapshot.managed and snapshot.drilled is not None:
            day = datetime.combine(snapshot.drilled.on, time(), tzinfo=timezone.utc)
            if day <= now + CLOCK_TOLERANCE:
                seen.append((day, snapshot.drilled.passed))
    if not seen:
        return True, "never drilled"
    when, passed = max(seen, key=lambda s: (s[0], not s[1]))
    last_text = f"last drill {when.astimezone(zone):%Y-%m-%d} ({'passed' if passed else 'failed'})"
    cutoff = drill.every.before(now, zone)
    slack = min((now - cutoff) * _EVERY_TOLERANCE, _MAX_TOLERANCE)
    if when <= cutoff + slack:
        return True, f"{last_text} is {drill.every} old or more"
    return False, f"not due: {last_text}"


def choose_snapshot(snapshots: Sequence[Snapshot], now: datetime | None = None) -> Snapshot | None:
    """Return the snapshot a drill restores: the newest managed, finished one (not dated
    after `now`, past a small tolerance, when `now` is given: its date cannot be trusted).
    None when there is none."""
    usable = [
        s
        for s in snapshots
        if s.managed
        and not s.creating
        and s.id
        and (now is None or s.created <= now + CLOCK_TOLERANCE)
    ]
    return max(usable, key=lambda s: (s.created, s.id), default=None)


def choose_machine(
    drill: Drill,
    snapshot: Snapshot,
    machine_types: Sequence[MachineType],
    preferred_region: str | None = None,
) -> tuple[MachineType, str] | str:
    """Return the machine type and region to restore `snapshot` to, or a refusal saying why
    none will do.

    The region must be one the snapshot is in where the cloud says so (DigitalOcean); any
    where it does not (Hetzner images are global). The type must be available there, with a
    disk of at least the snapshot's `min_disk_gb` and its architecture (Hetzner). The
    server's own region is preferred when a type fits there; then the cheapest type (ties:
    the smaller disk, then the name), then the region's name. `drill.machine_type` fixes the
    type, which must fit.
    """
    cloud = snapshot.cloud
    need_disk = (cloud.min_disk_gb if cloud else None) or 0.0
    need_arch = cloud.architecture if cloud else None
    allowed = set(cloud.regions) if cloud and cloud.regions else None

    def regions_of(machine: MachineType) -> list[str]:
        return sorted(r for r in machine.regions if allowed is None or r in allowed)

    def unfit(machine: MachineType) -> str | None:
        if not machine.available:
            return "is not available (deprecated or withdrawn)"
        if machine.disk_gb < need_disk:
            return f"has a {_gb(machine.disk_gb)} disk; the snapshot needs {_gb(need_disk)}"
        if need_arch and machine.architecture != need_arch:
            return f"is {machine.architecture}; the snapshot is {need_arch}"
        if not regions_of(machine):
            return f"is offered in none of the snapshot's regions ({_list(allowed)})"
        return None

    if drill.machine_type is not None:
        chosen = [m for m in machine_types if m.name == drill.machine_type]
        if not chosen:
            return (
                f"machine_type {drill.machine_type!r} is not offered by the account; "
                "leave machine_type out to take the cheapest that fits"
            )
        problem = unfit(chosen[0])
        if problem is not None:
            return f"machine_type {drill.machine_type} {problem}"
        candidates = chosen[:1]
    else:
        candidates = [m for m in machine_types if unfit(m) is None]
    options = [(m, r) for m in candidates for r in regions_of(m)]
    if not options:
        arch = f", {need_arch}" if need_arch else ""
        where = f" in the snapshot's regions ({_list(allowed)})" if allowed is not None else ""
        return f"no available machine type has a disk of {_gb(need_disk)} or more{arch}{where}"
    preferred = [(m, r) for m, r in options if r == preferred_region]
    machine, region = min(
        preferred or options, key=lambda o: (o[0].price_hourly, o[0].disk_gb, o[0].name, o[1])
    )
    return machine, region


def drill_duration(drill: Drill) -> timedelta:
    """The longest a drill that runs its course keeps its server: until it runs (at most the
    boot timeout), the probe (at most its timeout), and the deletion."""
    probe = drill.probe_timeout if drill.probe else 0.0
    return timedelta(seconds=drill.boot_timeout + probe) + DELETE_MARGIN


def drill_cost(machine: MachineType, provider: str, expected: timedelta) -> float:
    """What a server of `machine` kept for `expected` costs, in the machine's currency:
    DigitalOcean per second, at least 60 seconds or $0.01, whichever is higher; Hetzner every
    started hour (see the module's docstring for the sources)."""
    seconds = max(expected.total_seconds(), 0.0)
    if provider == DIGITALOCEAN:
        billed = max(seconds, DIGITALOCEAN_MINIMUM_SECONDS) / 3600 * machine.price_hourly
        return max(billed, DIGITALOCEAN_MINIMUM_CHARGE)
    return max(math.ceil(seconds / 3600), 1) * machine.price_hourly


def plan_drills(
    targets_with_snapshots: Sequence[tuple[Target, Sequence[Snapshot]]],
    machine_types_by_account: Mapping[str, Sequence[MachineType]],
    last_drills: Mapping[tuple[str, str, str], DrillRecord],
    now: datetime,
    forced: bool = False,
    server_regions: Mapping[tuple[str, str], str | None] | None = None,
) -> tuple[DrillPlan, ...]:
    """Return the drill plan of each target (one per server) that has a drill configured,
    in the plan's order (target name, provider, account, server).

    `last_drills` is the run state's, by (account, server id, target); `forced` (the `drill`
    command) makes every drill due. `machine_types_by_account` need hold only the accounts
    with a due drill: a due drill whose account's types were not read is refused, as is one
    with no snapshot to restore or no type that fits. The region preferred is where the server
    runs: `server_regions` by (account, server id), else `Target.region`.
    """
    regions = server_regions or {}
    plans = []
    for target, snapshots in targets_with_snapshots:
        if target.drill is None:
            continue
        key = (target.account, target.server_id, target.name)
        own = [s for s in snapshots if s.server_id == target.server_id]
        due, note = drill_due(target, last_drills.get(key), own, now)
        if forced:
            due, note = True, "run now (drill command)"
        if not due:
            plans.append(DrillPlan(target, False, note))
            continue
        plans.append(
            _due_plan(
                target,
                note,
                own,
                machine_types_by_account.get(target.account),
                regions.get((target.account, target.server_id), target.region),
                now,
            )
        )
    plans.sort(
        key=lambda p: (p.target.name, p.target.provider, p.target.account, p.target.server_id)
    )
    return tuple(plans)


def _due_plan(
    target: Target,
    note: str,
    snapshots: Sequence[Snapshot],
    machine_types: Sequence[MachineType] | None,
    region: str | None,
    now: datetime,
) -> DrillPlan:
    drill = target.drill
    assert drill is not None
    snapshot = choose_snapshot(snapshots, now)
    if snapshot is None:
        return DrillPlan(target, True, note, refusal="no managed snapshot to restore yet")
    if machine_types is None:
        return DrillPlan(
            target,
            True,
            note,
            snapshot=snapshot,
            refusal=f"the machine types of account {target.account} could not be read",
        )
    chosen = choose_machine(drill, snapshot, machine_types, region)
    if isinstance(chosen, str):
        return DrillPlan(target, True, note, snapshot=snapshot, refusal=chosen)
    machine, where = chosen
    return DrillPlan(
        target,
        True,
        note,
        snapshot=snapshot,
        machine_type=machine,
        region=where,
        name=ownership.drill_server_name(target, now),
        cost=drill_cost(machine, target.provider, drill_duration(drill)),
        currency=machine.currency,
    )


@dataclass(frozen=True)
class Leftovers:
    """What the journal's open drills and the account's drill servers ask of a run, before it
    drills (docs/promises.md §5): `delete` the journaled servers that are listed and carry
    our marks (entry, server); cross off (`settle`) the entries whose server is not listed,
    once the cloud confirms it by id where the entry has one; keep `waiting` those not yet
    certain; report `unknown` servers with our drill marks
    the journal does not name, and `refused` journaled ones that may not be deleted (and
    why). Only `delete` is ever deleted."""

    delete: tuple[tuple[OpenDrill, MadeServer], ...] = ()
    settle: tuple[OpenDrill, ...] = ()
    waiting: tuple[OpenDrill, ...] = ()
    unknown: tuple[MadeServer, ...] = ()
    refused: tuple[tuple[MadeServer, str], ...] = ()


def leftovers(
    open_entries: Sequence[OpenDrill],
    listed: Sequence[MadeServer],
    listed_completely: bool,
    owner: str,
    provider: str,
    now: datetime,
    margin: timedelta = SETTLE_MARGIN,
) -> Leftovers:
    """Sort an account's open drill entries and listed drill servers into what to delete,
    cross off, wait for and report.

    An entry names its server by id once the create answered, else by its exact name among
    this configuration's drill servers (the reply was lost; another configuration may have a
    server of that name): a server matched by id must still have the entry's name. A server is
    deleted only if an entry names it, exactly one listed server answers to that entry, and
    it carries the drill mark and this configuration's owner mark and no other owner's
    (`ownership.is_drill_server`). An entry whose server is absent from a complete listing
    goes to `settle`: with its id at once, for the engine to ask the cloud by id (a listing
    may lag behind a create; the server is deleted if there, crossed off if gone); named
    only (a lost reply) once older than `margin`, waiting until then. A server with our drill
    marks and no entry is reported, never deleted: someone else may have made it so.
    """
    delete, settle, waiting, refused = [], [], [], []
    matched: set[str] = set()
    for entry in open_entries:
        if entry.server_id:
            found = [s for s in listed if s.id == entry.server_id]
        else:  # a lost reply: another configuration's server of that name is not its server
            found = [
                s
                for s in listed
                if s.name == entry.name
                and not ownership.marks_another_owner(provider, s.labels, owner)
            ]
        matched.update(s.id for s in found)
        if not found:  # with its id, the engine asks the cloud by id before crossing it off
            old = bool(entry.server_id) or now - entry.when >= margin
            (settle if listed_completely and old else waiting).append(entry)
            continue
        if len(found) > 1:
            refused += [
                (s, f"{len(found)} servers are named {entry.name}: delete the extra yourself")
                for s in found
            ]
            waiting.append(entry)
            continue
        server = found[0]
        if server.name != entry.name:
            refused.append(
                (
                    server,
                    f"renamed from {entry.name} to {server.name} since it was made: "
                    "not deleted; delete it yourself if it is a drill server",
                )
            )
            waiting.append(entry)
        elif not ownership.is_drill_server(provider, server.labels, owner):
            refused.append(
                (server, "no longer carries this configuration's drill marks: not deleted")
            )
            waiting.append(entry)
        else:
            delete.append((entry, server))
    unknown = tuple(
        s
        for s in listed
        if s.id not in matched and ownership.is_drill_server(provider, s.labels, owner)
    )
    return Leftovers(tuple(delete), tuple(settle), tuple(waiting), unknown, tuple(refused))


def _gb(size: float) -> str:
    return f"{size:g} GB"


def _list(regions: set[str] | None) -> str:
    return ", ".join(sorted(regions or ())) or "none"
