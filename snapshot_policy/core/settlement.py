"""What a killed run left open in the journal, and how this run closes it: on positive
evidence only (docs/promises.md §5). Pure: the executor carries out the commands."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from snapshot_policy.core import commands
from snapshot_policy.core.lifecycle import target_label
from snapshot_policy.core.model import (
    ActionKind,
    Snapshot,
    TargetPlan,
)


def settle(
    plan: TargetPlan,
    pending: Iterable[str],
    ahead: Iterable[tuple[str, datetime]],
    deletions: Mapping[str, tuple[str, str]],
    now: datetime,
) -> list[commands.Command]:
    """Close what an earlier run left open in the journal for `plan`'s server, on positive
    evidence only (the plan's snapshots are this run's listing).

    `pending` names the starts not crossed off: one whose snapshot is listed is marked if it
    must be, audited and crossed off; one not listed yet proves nothing and stays open.
    `ahead` gives the starts dated by a clock that ran ahead (name, start time): they adopt
    nothing and are crossed off. `deletions` maps the snapshot ids whose deletion was sent
    to (name, reason): one no longer listed is audited as deleted; each is crossed off.
    """
    target = plan.target
    listed = {
        a.snapshot.name: a.snapshot
        for a in plan.actions
        if a.kind is not ActionKind.CREATE and a.snapshot.id
    }
    orders: list[commands.Command] = []
    settled = set()
    for name in pending:
        snapshot = listed.get(name)
        if snapshot is None or not snapshot.managed:  # not listed yet, or not what this start made
            continue
        if snapshot.unmarked:
            orders += [
                commands.Mark(snapshot),
                commands.Log(
                    logging.INFO,
                    f"{target.name}: marked {snapshot.name} ({snapshot.id}), "
                    "started by an interrupted run",
                ),
                commands.Record("adopted", snapshot, snapshot.ownership, once=True),
            ]
        else:
            orders.append(
                commands.Record(
                    "created",
                    snapshot,
                    "made by an earlier run that could not see it finish",
                    once=True,
                )
            )
        orders.append(commands.CrossOffStart(name))
        settled.add(name)
    for name, started in ahead:
        if name in settled:  # crossed off above
            continue
        orders += [
            commands.Log(
                logging.WARNING,
                f"{target_label(plan)}: crossed off the journal's start of {name}, dated "
                f"{started.isoformat()} by a clock that ran ahead; it adopts nothing",
            ),
            commands.CrossOffStart(name),
        ]
    present = {a.snapshot.id for a in plan.actions if a.snapshot.id}
    for snapshot_id, (name, reason) in deletions.items():
        if snapshot_id not in present:
            gone = Snapshot(snapshot_id, name, now, target.server_id, True, "")
            orders += [
                commands.Log(
                    logging.INFO,
                    f"{target.name}: {name} ({snapshot_id}) was deleted by an earlier run "
                    "that could not see it done",
                ),
                commands.Record(
                    "deleted", gone, f"{reason} (deleted by an interrupted run)", once=True
                ),
            ]
        orders.append(commands.CrossOffDeletion(snapshot_id))
    return orders
