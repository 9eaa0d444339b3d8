"""Saved plans: `plan --out FILE` writes one, `apply --plan FILE` carries out exactly it.

Exactly means: the creates and deletions the file lists, no others. The file is tied to
the snapshots it saw by its fingerprint; if the cloud changed since, apply refuses and
changes nothing — a reviewed plan must not be applied to a world it did not review.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from snapshot_policy.model import ActionKind, Plan, PlanAction, Snapshot, TargetPlan
from snapshot_policy.render import PLAN_FORMAT_VERSION


class PlanFileError(Exception):
    """The saved plan cannot be applied; the message says why and what to do."""


def read_plan_file(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise PlanFileError(f"cannot read plan file {path}: {getattr(error, 'strerror', None) or error}") from None
    except json.JSONDecodeError as error:
        raise PlanFileError(f"{path} is not a saved plan (not JSON: {error.msg} on line {error.lineno})") from None
    if not isinstance(document, dict) or document.get("format_version") != PLAN_FORMAT_VERSION or not isinstance(document.get("targets"), list):
        raise PlanFileError(f"{path} is not a saved plan of format {PLAN_FORMAT_VERSION}; make one with `snapshot-policy plan --out FILE`")
    return document


def replay(saved: dict, fresh: Plan, path: Path) -> Plan:
    """Return the saved decisions over the fresh observation. Raise PlanFileError if the
    snapshots or targets differ from what the saved plan saw."""
    if saved.get("fingerprint") != fresh.fingerprint:
        raise PlanFileError(f"the snapshots changed since {path} was made; nothing was changed. Run plan again and review the new plan")
    entries = {_key(e): e for e in saved["targets"] if isinstance(e, dict)}
    if set(entries) != {_key_of(t) for t in fresh.targets}:
        raise PlanFileError(f"the targets differ from those in {path} (configuration or servers changed); nothing was changed. Run plan again")
    return Plan(fresh.made_at, tuple(_replay_target(entries[_key_of(t)], t, fresh.made_at) for t in fresh.targets), fresh.fingerprint)


def _replay_target(entry: dict, fresh: TargetPlan, now: datetime) -> TargetPlan:
    doomed = {d.get("id"): d.get("reason", "") for d in entry.get("delete") or []}
    actions = []
    for action in fresh.actions:
        if action.kind is ActionKind.CREATE:
            continue
        if action.snapshot.id in doomed:
            actions.append(PlanAction(ActionKind.DELETE, action.snapshot, doomed[action.snapshot.id]))
        elif action.kind is ActionKind.DELETE:
            actions.append(PlanAction(ActionKind.SKIP, action.snapshot, "not deleted: the saved plan keeps it"))
        else:
            actions.append(action)
    create = entry.get("create")
    if create:
        planned = Snapshot("", str(create["name"]), now, fresh.target.server_id, True, "to be created")
        actions.insert(0, PlanAction(ActionKind.CREATE, planned, "in the saved plan", tuple(create.get("rules") or ())))
    return TargetPlan(fresh.target, tuple(actions), str(entry.get("schedule_note", "")), entry.get("refused"))


def _key(entry: dict) -> tuple:
    return tuple(str(entry.get(k)) for k in ("target", "provider", "account", "server_id"))


def _key_of(plan: TargetPlan) -> tuple:
    target = plan.target
    return (target.name, target.provider, target.account, target.server_id)
