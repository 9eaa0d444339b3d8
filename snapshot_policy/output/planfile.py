"""Saved plans: `plan --out FILE` writes one, `apply --plan FILE` takes it as a proposal.

A saved plan is the plan's JSON form, the document `plan --output json` prints too: a stable
interface (documented in the README) whose keys are only ever added, never renamed or
removed, and whose `format_version` changes if that promise breaks.

A saved plan is never an authority (docs/promises.md §3): apply plans afresh from the current
configuration and a fresh listing, and carries out only what both plans agree on. It
refuses the whole plan, changing nothing, when the file is older than the age limit or
dated ahead, was made from another configuration, saw other snapshots, or asks for
anything the fresh plan would not do — and it lists each difference. Whatever the file
says, the create's name, the safety refusals and every reason come from the fresh plan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from snapshot_policy.core import consistency, copies
from snapshot_policy.core.cost import NO_PRICES, Storage, target_storage, total_storage
from snapshot_policy.core.model import (
    ActionKind,
    DrillPlan,
    Plan,
    PlanAction,
    Price,
    Target,
    TargetFailure,
    TargetPlan,
)
from snapshot_policy.core.ownership import adopted
from snapshot_policy.core.reconcile import CLOCK_TOLERANCE, filled_pattern
from snapshot_policy.core.redaction import escape_controls
from snapshot_policy.output.jsondoc import indented_json, iso_utc, target_identity
from snapshot_policy.state.statefiles import write_atomic

PLAN_FORMAT_VERSION = 1
DEFAULT_MAX_AGE = timedelta(hours=24)


class PlanFileError(Exception):
    """The saved plan cannot be applied; the message says why and what to do."""


def plan_document(
    plan: Plan, failures: Sequence[TargetFailure] = (), prices: Mapping[str, Price] = NO_PRICES
) -> dict:
    """Return the plan as the JSON-ready dictionary documented in the README, its storage
    costs at `prices` (per provider)."""
    counts = dict.fromkeys(ActionKind, 0)
    targets = []
    for target_plan in plan.targets:  # one pass over the actions, for the documents and the counts
        by_kind = _by_kind(target_plan)
        for kind, actions in by_kind.items():
            counts[kind] += len(actions)
        targets.append(_target_document(target_plan, by_kind, prices))
    now, after = total_storage(plan, prices)
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "made_at": iso_utc(plan.made_at),
        "fingerprint": plan.fingerprint,
        "config_fingerprint": plan.config_fingerprint,
        "targets": targets,
        "failed": [
            {"target": f.target, "account": f.account, "reason": f.reason} for f in failures
        ],
        "drills": [_drill_document(d) for d in plan.drills],
        "summary": {
            "targets": len(targets),
            "create": counts[ActionKind.CREATE],
            "delete": counts[ActionKind.DELETE],
            "keep": counts[ActionKind.KEEP],
            "skip": counts[ActionKind.SKIP],
            "refused_targets": sum(1 for t in plan.targets if t.refusal),
            "failed_targets": len(failures),
            "has_changes": plan.has_changes,
        },
        "storage": {
            "prices": {
                p: {
                    "per_gb_month": prices[p].per_gb_month,
                    "currency": prices[p].currency,
                    **({"source": prices[p].source} if prices[p].source else {}),
                }
                for p in sorted(prices)
            },
            "now": storage_document(now),
            "after_apply": storage_document(after),
        },
    }


def plan_json(
    plan: Plan, failures: Sequence[TargetFailure] = (), prices: Mapping[str, Price] = NO_PRICES
) -> str:
    """The plan document as `plan --output json` prints it and `plan --out` saves it."""
    return indented_json(plan_document(plan, failures, prices)) + "\n"


def save(
    path: Path, plan: Plan, failures: Sequence[TargetFailure], prices: Mapping[str, Price]
) -> None:
    """Write the plan for `apply --plan`. Raise StateFileError if it cannot be written."""
    write_atomic(path, plan_json(plan, failures, prices), "plan file")


def _by_kind(plan: TargetPlan) -> dict[ActionKind, list[PlanAction]]:
    """The target's actions of each kind, in plan order (`TargetPlan.of_kind` for all kinds
    at once)."""
    by_kind: dict[ActionKind, list[PlanAction]] = {kind: [] for kind in ActionKind}
    for action in plan.actions:
        by_kind[action.kind].append(action)
    return by_kind


def _target_document(
    plan: TargetPlan, by_kind: dict[ActionKind, list[PlanAction]], prices: Mapping[str, Price]
) -> dict:
    creates = by_kind[ActionKind.CREATE]
    create = creates[0] if creates else None
    now, after, estimate = target_storage(plan, prices)
    return {
        **target_identity(plan.target),
        "schedule": plan.target.schedule.describe(),
        "schedule_note": plan.schedule_note,
        "retention": plan.target.retention.describe(),
        "rule_sources": dict(plan.target.rule_sources),
        "create": None
        if create is None
        else {
            "name": create.snapshot.name,
            "name_at_apply": name_at_apply(plan.target),
            "rules": list(create.rules),
            "estimated_size_gb": estimate,
        },
        "delete": [_snapshot_document(a, reason=True) for a in by_kind[ActionKind.DELETE]],
        "keep": [_snapshot_document(a, reason=False) for a in by_kind[ActionKind.KEEP]],
        "skip": [_snapshot_document(a, reason=True) for a in by_kind[ActionKind.SKIP]],
        **_marks_documents(by_kind),
        "refused": plan.refusal,
        "withheld": plan.withheld,
        "problems": list(plan.problems),
        "storage": {"now": storage_document(now), "after_apply": storage_document(after)},
        **_copies_document(plan),
        **_consistency_document(plan),
    }


def _copies_document(plan: TargetPlan) -> dict:
    """A target with copies (docs/promises.md §5.15): the regions it copies to, where the
    newest snapshot is, what it lacks, what is running, and what apply starts. Nothing for
    a target without copies, whose document stays as it was."""
    target = plan.target
    if not target.copies:
        return {}
    newest = copies.plan_newest(plan)
    due = copies.transfers_due(plan)
    return {
        "copies": {
            "regions": list(target.copies),
            "newest": None
            if newest is None
            else {
                "id": newest.id,
                "name": newest.name,
                "regions": list(copies.regions(newest)),
                "missing": list(copies.missing(target, newest)),
                "transferring": list(copies.pending(newest)),
            },
            "to_transfer": list(due[1]) if due else [],
            "snapshot_regions": {
                a.snapshot.id: list(copies.regions(a.snapshot))
                for a in plan.actions
                if a.snapshot.managed and a.snapshot.cloud is not None
            },
            "held": copies.held(target, [a.snapshot for a in plan.actions])
            if plan.create is None
            else None,
        }
    }


def _consistency_document(plan: TargetPlan) -> dict:
    """consistency: shutdown (docs/promises.md §5.17), with the plan's words; nothing without."""
    rule = consistency.shuts_down(plan.target)
    if rule is None:
        return {}
    return {
        "consistency": {
            "mode": rule.mode,
            "force": rule.force,
            "timeout": rule.timeout,
            "server_status": plan.target.server_status,
            "left_off": consistency.left_off(plan.target),
            "note": consistency.plan_note(plan.target, plan.create is not None),
        }
    }


def name_at_apply(target: Target) -> str:
    """The name apply gives the target's new snapshot, `{timestamp}` standing for the time
    apply runs (every name pattern has it): a saved plan's `name` is only what it would be
    had apply run when the plan was made."""
    return filled_pattern(target)


def _snapshot_document(action: PlanAction, reason: bool) -> dict:
    snapshot = action.snapshot
    document = {
        "id": snapshot.id,
        "name": snapshot.name,
        "created": iso_utc(snapshot.created),
        "protected": snapshot.protected,
        "adopted": adopted(snapshot),
        "ownership": snapshot.ownership,
        "size_gb": snapshot.size_gb,
    }
    if snapshot.note:
        document["note"] = snapshot.note
    if snapshot.pin is not None:  # pins and soft deletion (§5.16): only where they are
        document["pin"] = {
            "until": snapshot.pin.until.isoformat(),
            "note": snapshot.pin.note,
            "protected_by_us": snapshot.pin.protected_by_us,
        }
    if snapshot.pending_delete is not None:
        document["pending_delete"] = snapshot.pending_delete.isoformat()
    if reason:
        document["reason"] = action.reason
    else:
        document["rules"] = list(action.rules)
    return document


def _marks_documents(by_kind: dict[ActionKind, list[PlanAction]]) -> dict:
    """The marks apply writes (docs/promises.md §5.16), each key only where it has some, so a
    plan without them reads as it always did."""
    keys = (
        ("mark_pending", ActionKind.MARK_PENDING),
        ("unmark_pending", ActionKind.UNMARK_PENDING),
        ("unpin", ActionKind.UNPIN),
    )
    return {
        key: [_snapshot_document(a, reason=True) for a in by_kind[kind]]
        for key, kind in keys
        if by_kind[kind]
    }


def _drill_document(drill: DrillPlan) -> dict:
    """A target's restore drill: due or not and why, and when due, the snapshot it restores,
    the machine type and region, the drill server's name and the estimated cost; or why it
    is refused."""
    snapshot = drill.snapshot
    return {
        **target_identity(drill.target),
        "every": str(drill.target.drill.every) if drill.target.drill else None,
        "due": drill.due,
        "note": drill.note,
        "refused": drill.refusal,
        "snapshot": None
        if snapshot is None
        else {"id": snapshot.id, "name": snapshot.name, "created": iso_utc(snapshot.created)},
        "machine_type": drill.machine_type.name if drill.machine_type else None,
        "region": drill.region,
        "drill_server_name": drill.name or None,
        "cost": None if drill.cost is None else round(drill.cost, 4),
        "currency": drill.currency or None,
    }


def storage_document(storage: Storage) -> dict:
    """Snapshot storage as the JSON documents carry it (plan and status): the totals are null
    when a size is unknown, the `known_` keys what is known."""
    complete = not storage.unknown
    costs = {c: round(v, 4) for c, v in sorted(storage.costs.items())}
    return {
        "snapshots": storage.snapshots,
        "unknown_sizes": storage.unknown,
        "size_gb": round(storage.known_gb, 3) if complete else None,
        "known_size_gb": round(storage.known_gb, 3),
        "monthly_cost": costs if complete else None,
        "known_monthly_cost": costs,
        "estimated": storage.estimated,
    }


def read_plan_file(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise PlanFileError(
            f"cannot read plan file {path}: {getattr(error, 'strerror', None) or error}"
        ) from None
    except json.JSONDecodeError as error:
        raise PlanFileError(
            f"{path} is not a saved plan (not JSON: {error.msg} on line {error.lineno})"
        ) from None
    if (
        not isinstance(document, dict)
        or document.get("format_version") != PLAN_FORMAT_VERSION
        or not isinstance(document.get("targets"), list)
    ):
        raise PlanFileError(
            f"{path} is not a saved plan of format {PLAN_FORMAT_VERSION}; "
            "make one with `snapshot-policy plan --out FILE`"
        )
    return document


def agreed(saved: dict, fresh: Plan, path: Path, max_age: timedelta = DEFAULT_MAX_AGE) -> Plan:
    """Return `fresh` cut down to what the saved plan also asks for.

    Raise PlanFileError, naming `path` and saying that nothing was changed, when the saved
    plan is too old or dated ahead of `fresh.made_at`, comes from another configuration or
    another set of snapshots, or holds a create or a deletion the fresh plan would not do.
    """
    _check_age(saved.get("made_at"), fresh.made_at, max_age, path)
    again = (
        "nothing was changed. Run `snapshot-policy plan --out FILE` again and review the new plan"
    )
    if saved.get("config_fingerprint") != fresh.config_fingerprint:
        raise PlanFileError(
            f"{path} was made from another configuration "
            f"(targets, retention, schedule or safety differ); {again}"
        )
    if saved.get("fingerprint") != fresh.fingerprint:
        raise PlanFileError(f"the snapshots changed since {path} was made; {again}")
    entries = {_key(e): e for e in saved["targets"] if isinstance(e, dict)}
    if set(entries) != {_key_of(t) for t in fresh.targets}:
        raise PlanFileError(
            f"the targets differ from those in {path} (configuration or servers changed); {again}"
        )
    differences: list[str] = []
    targets = tuple(_agreed_target(entries[_key_of(t)], t, differences) for t in fresh.targets)
    if differences:
        listed = "".join(f"\n  - {d}" for d in differences)
        raise PlanFileError(
            f"{path} asks for what a fresh plan would not do, so the whole plan is refused; "
            f"{again}:{listed}"
        )
    return Plan(
        fresh.made_at,
        targets,
        fresh.fingerprint,
        fresh.config_fingerprint,
        _agreed_drills(saved.get("drills"), fresh.drills, path),
    )


def _agreed_drills(saved: object, fresh: Sequence[DrillPlan], path: Path) -> tuple[DrillPlan, ...]:
    """The fresh plan's drills, each run only if the saved plan has it due too. A drill
    changes no snapshot but its mark, and costs a server's time: one the saved plan did not
    show is left for the next run rather than refusing the plan."""
    entries = saved if isinstance(saved, list) else []
    due = {_key(e) for e in entries if isinstance(e, dict) and e.get("due") is True}
    return tuple(
        d
        if not d.due or _key_of_target(d.target) in due
        else DrillPlan(d.target, False, f"not due: {path} does not plan this drill")
        for d in fresh
    )


def _check_age(made_at: object, now: datetime, max_age: timedelta, path: Path) -> None:
    try:
        made = datetime.fromisoformat(str(made_at).replace("Z", "+00:00"))
        age = now - made
    except (TypeError, ValueError):
        raise PlanFileError(
            f"{path} does not say when it was made (made_at); "
            "make a new one with `snapshot-policy plan --out FILE`"
        ) from None
    if age > max_age:
        raise PlanFileError(
            f"{path} was made at {made_at}, {_hours(age)} ago, "
            f"past the limit of {_hours(max_age)} (--max-plan-age); nothing was changed. Plan again"
        )
    if age < -CLOCK_TOLERANCE:
        raise PlanFileError(
            f"{path} is dated {made_at}, ahead of this run's clock; "
            "nothing was changed. Check the clocks and plan again"
        )


def _agreed_target(entry: dict, fresh: TargetPlan, differences: list[str]) -> TargetPlan:
    """The fresh decisions for one target, keeping a create or deletion only if `entry` has it
    too."""
    name = fresh.target.name
    saved_create = entry.get("create")
    if saved_create and fresh.create is None:
        differences.append(
            f"{name}: the saved plan creates a snapshot; "
            f"a fresh plan does not ({fresh.schedule_note})"
        )
    saved_deletes = _deleted_ids(entry, name)
    marks = entry.get("mark_pending")  # soft deletion (§5.16): a mark only a fresh plan has waits
    saved_marks = (
        {str(item.get("id")) for item in (marks or []) if isinstance(item, dict)}
        if isinstance(marks, list)
        else set()
    )
    fresh_actions = {a.snapshot.id: a for a in fresh.actions if a.kind is not ActionKind.CREATE}
    for snapshot_id, snapshot_name in saved_deletes.items():
        action = fresh_actions.get(snapshot_id)
        if action is None:
            differences.append(
                f"{name}: the saved plan deletes {escape_controls(snapshot_name)} ({snapshot_id}), "
                "which a fresh listing does not show"
            )
        elif action.kind is not ActionKind.DELETE:
            differences.append(
                f"{name}: the saved plan deletes {escape_controls(action.snapshot.name)} "
                f"({snapshot_id}); a fresh plan would {action.kind.value} it: "
                f"{escape_controls(action.reason)}"
            )
    actions = []
    for action in fresh.actions:
        if action.kind is ActionKind.CREATE and not saved_create:
            continue
        if action.kind is ActionKind.DELETE and action.snapshot.id not in saved_deletes:
            action = PlanAction(
                ActionKind.SKIP, action.snapshot, "not deleted: the saved plan keeps it"
            )
        if action.kind is ActionKind.MARK_PENDING and action.snapshot.id not in saved_marks:
            action = PlanAction(
                ActionKind.SKIP, action.snapshot, "not marked: the saved plan does not mark it"
            )
        actions.append(action)
    return replace(fresh, actions=tuple(actions))


def _deleted_ids(entry: dict, target: str) -> dict[str, str]:
    """The ids (with names) the saved plan deletes for one target. Raise PlanFileError if
    malformed."""
    deletes = entry.get("delete") or []
    if not isinstance(deletes, list) or not all(
        isinstance(d, dict) and isinstance(d.get("id"), str) for d in deletes
    ):
        raise PlanFileError(
            f"the saved plan's deletions for {target} are malformed; "
            "make a new one with `snapshot-policy plan --out FILE`"
        )
    return {d["id"]: str(d.get("name", "")) for d in deletes}


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:.1f} h"


def _key(entry: dict) -> tuple:
    return tuple(str(entry.get(k)) for k in ("target", "provider", "account", "server_id"))


def _key_of(plan: TargetPlan) -> tuple:
    return _key_of_target(plan.target)


def _key_of_target(target: Target) -> tuple:
    return (target.name, target.provider, target.account, target.server_id)
