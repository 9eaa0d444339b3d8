"""What `status` prints: a block per target and server, the accounts, a summary line, in
lines of at most 80 columns as the plan's (render); or a JSON document (jsondoc's
conventions: UTC timestamps with a `Z`, the keys that name a server, keys only ever added).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from snapshot_policy.core import copies
from snapshot_policy.core.model import Snapshot
from snapshot_policy.core.overrides import describe_schedule
from snapshot_policy.core.reconcile import duration_text
from snapshot_policy.core.redaction import escape_controls
from snapshot_policy.core.status import (
    LATE,
    NONE,
    OK,
    AccountStatus,
    LastDrill,
    Status,
    TargetStatus,
)
from snapshot_policy.output.jsondoc import indented_json, iso_utc, target_identity
from snapshot_policy.output.planfile import storage_document
from snapshot_policy.output.render import (
    price_label,
    price_sources,
    storage_text,
    wrap_line,
    wrap_sentences,
)

FORMAT_VERSION = 1
_WORDS = {OK: "ok", LATE: "LATE", NONE: "NO SNAPSHOT"}


def status_text(status: Status) -> str:
    """The status as the operator reads it: each target's server, the targets that could not
    be judged, the accounts, then the summary."""
    blocks = [_target_text(t) for t in status.targets]
    blocks += [
        wrap_line(escape_controls(f"{f.target}: FAILED: {f.reason}"), "    ")
        for f in status.failures
    ]
    if status.accounts:
        blocks.append(_accounts_text(status.accounts))
    if any(price.source for _, price in status.prices):
        blocks.append(_prices_text(status))
    return "\n\n".join(blocks + [wrap_sentences(summary(status))]) + "\n"


def _prices_text(status: Status) -> str:
    """What a GB of snapshots costs a month, and where each price came from."""
    prices = dict(status.prices)
    lines = ["Prices per GB-month:"] + [
        f"  {price.currency} {price.per_gb_month:g} ({price_label(key)})"
        for key, price in status.prices
    ]
    lines += price_sources(prices, list(prices))
    return "\n".join(wrap_line(line, "    ") for line in lines)


def _target_text(judged: TargetStatus) -> str:
    """A target's server; the drill lines only where drills are configured or were run."""
    target = judged.target
    kind = "server" if not target.volume_of else "volume"  # volumes: true
    of = f" of droplet {target.volume_of}" if target.volume_of else ""
    lines = [
        f"{target.name}: {target.server_name} ({target.provider} {kind} {target.server_id}{of}, "
        f"account {target.account}): {_WORDS[judged.state]}"
    ]
    if judged.newest is not None:
        lines.append(f"  newest {_snapshot_text(judged.newest, judged.age)}")
    if target.copies and judged.newest is not None and judged.newest.cloud is not None:
        lines.append(f"  copies: {copies.describe(target, judged.newest)}")
    # what is wrong is said below
    schedule = f"  schedule {describe_schedule(target.schedule, target.rule_sources)}"
    lines.append(f"{schedule}: {judged.note}" if judged.state == OK else schedule)
    lines.append(f"  snapshots: {judged.managed} managed; billed: {storage_text(judged.storage)}")
    lines += _marks_lines(judged)
    run = judged.last_run
    lines.append(
        "  last run: never recorded"
        if run is None
        else f"  last run: {iso_utc(run.when)[:16]}Z, {'ok' if run.ok else 'FAILED'}"
    )
    if target.drill is not None or judged.last_drill is not None or judged.verified is not None:
        lines.append(f"  last drill: {_drill_text(judged.last_drill)}")
        lines.append(
            "  newest verified: none"
            if judged.verified is None
            else f"  newest verified: {_snapshot_text(judged.verified, judged.verified_age)}"
        )
    lines += [f"  ! {problem}" for problem in judged.problems]
    return "\n".join(wrap_line(escape_controls(line), "      ") for line in lines)


def _marks_lines(judged: TargetStatus) -> list[str]:
    """Its pins and pending deletions with their days (docs/promises.md §5.16); none where
    it has none, so a status without them reads as it always did."""
    lines = [
        f"  pinned: {s.name} (id {s.id}) until {s.pin.until.isoformat()}"
        + (f" ({s.pin.note})" if s.pin.note else "")
        for s in judged.pinned
    ]
    if judged.pending:
        lines.append(f"  {len(judged.pending)} pending deletion:")
        lines += [
            f"    {s.name} (id {s.id}) from {s.pending_delete.isoformat()}" for s in judged.pending
        ]
    return lines


def _snapshot_text(snapshot: Snapshot, age: timedelta | None) -> str:
    old = f", {duration_text(age)} old" if age is not None else ""
    return f"{snapshot.name} (id {snapshot.id}, {iso_utc(snapshot.created)[:16]}Z{old})"


def _drill_text(drill: LastDrill | None) -> str:
    if drill is None:
        return "never"
    day = iso_utc(drill.when)[:16] + "Z" if drill.when is not None else drill.on.isoformat()
    details = ["passed" if drill.passed else "FAILED"]
    if drill.restore_seconds is not None:
        details.append(f"restored in {drill.restore_seconds:.0f} s")
    details.append(f"from the {drill.source}")
    return f"{day} ({', '.join(details)})"


def _accounts_text(accounts: Sequence[AccountStatus]) -> str:
    lines = ["Accounts:"]
    for account in accounts:
        name = f"  {account.account.name} ({account.account.provider})"
        if account.unreadable:
            lines.append(f"{name}: cannot be read: {account.unreadable}")
            continue
        limit = account.account.snapshot_limit
        parts = [f"{account.servers} server(s)"]
        if account.uncovered is None:
            parts.append("uncovered not judged (--target)")
        else:
            parts.append(
                f"{len(account.uncovered)} uncovered"
                + (f" ({account.ignored} ignored)" if account.ignored else "")
            )
        parts.append(
            f"{account.snapshots} snapshot(s)" + (f" of a limit of {limit}" if limit else "")
        )
        lines.append(f"{name}: {', '.join(parts)}")
        lines += [f"    ! {problem}" for problem in account.problems]
    return "\n".join(wrap_line(escape_controls(line), "      ") for line in lines)


def summary(status: Status) -> str:
    """The last line: how many servers are ok, late, without a snapshot or failing, the
    uncovered servers and accounts over their limit, and the exit code."""
    states = [t.state for t in status.targets]
    failing = sum(1 for t in status.targets if t.problems and t.state == OK)
    uncovered = sum(len(a.uncovered or ()) for a in status.accounts)
    over = sum(
        1
        for a in status.accounts
        if a.account.snapshot_limit is not None and a.snapshots > a.account.snapshot_limit
    )
    line = (
        f"Status: {states.count(OK)} ok, {states.count(LATE)} late, "
        f"{states.count(NONE)} without a snapshot"
        + (f", {failing} with a failed run or drill" if failing else "")
        + f" of {len(states)} server(s)."
    )
    line += f" {uncovered} uncovered server(s)." if uncovered else ""
    line += f" {over} account(s) over their snapshot limit." if over else ""
    unreadable = sum(1 for a in status.accounts if a.unreadable)
    line += f" {unreadable} account(s) unreadable." if unreadable else ""
    failed = len({f.target for f in status.failures})
    line += f" {failed} target(s) failed." if failed else ""
    return line + f" Exit {status.exit_code}."


def status_document(status: Status) -> dict:
    """The status as the JSON-ready dictionary documented in the README."""
    states = [t.state for t in status.targets]
    return {
        "format_version": FORMAT_VERSION,
        "made_at": iso_utc(status.made_at),
        "exit_code": status.exit_code,
        "targets": [_target_document(t) for t in status.targets],
        "accounts": [_account_document(a) for a in status.accounts],
        "failed": [
            {"target": f.target, "account": f.account, "reason": f.reason} for f in status.failures
        ],
        "summary": {
            "servers": len(states),
            "ok": states.count(OK),
            "late": states.count(LATE),
            "none": states.count(NONE),
            "with_problems": sum(1 for t in status.targets if t.problems),
            "uncovered": sum(len(a.uncovered or ()) for a in status.accounts),
            "failed_targets": len({f.target for f in status.failures}),
        },
        "prices": {
            key: {"per_gb_month": p.per_gb_month, "currency": p.currency, "source": p.source}
            for key, p in status.prices
        },
    }


def status_json(status: Status) -> str:
    return indented_json(status_document(status)) + "\n"


def _target_document(judged: TargetStatus) -> dict:
    run, drill = judged.last_run, judged.last_drill
    return {
        **target_identity(judged.target),
        "schedule": judged.target.schedule.describe(),
        "rule_sources": dict(judged.target.rule_sources),
        "state": judged.state,
        "note": judged.note,
        "newest": _snapshot_document(judged.newest, judged.age),
        "managed_snapshots": judged.managed,
        "storage": storage_document(judged.storage),
        "last_run": None
        if run is None
        else {"when": iso_utc(run.when), "ok": run.ok, "error": run.error},
        "last_drill": None
        if drill is None
        else {
            "passed": drill.passed,
            "on": drill.on.isoformat(),
            "when": iso_utc(drill.when) if drill.when else None,
            "restore_seconds": drill.restore_seconds,
            "snapshot_id": drill.snapshot_id,
            "error": drill.error,
            "source": drill.source,
        },
        "newest_verified": _snapshot_document(judged.verified, judged.verified_age),
        "problems": list(judged.problems),
        **_marks_document(judged),
        **_copies_document(judged),
    }


def _copies_document(judged: TargetStatus) -> dict:
    """Where the newest snapshot of a target with copies is, and what it lacks; nothing for a
    target without copies, whose document stays as it was."""
    target, newest = judged.target, judged.newest
    if not target.copies:
        return {}
    return {
        "copies": {
            "regions": list(target.copies),
            "newest_regions": list(copies.regions(newest)) if newest else [],
            "missing": list(copies.missing(target, newest)) if newest else [],
            "transferring": list(copies.pending(newest)) if newest else [],
        }
    }


def _marks_document(judged: TargetStatus) -> dict:
    """`pinned` and `pending_delete`, each only where it has some (docs/promises.md §5.16)."""
    document: dict = {}
    if judged.pinned:
        document["pinned"] = [
            {
                "id": s.id,
                "name": s.name,
                "until": s.pin.until.isoformat(),
                "note": s.pin.note,
                "protected_by_us": s.pin.protected_by_us,
            }
            for s in judged.pinned
        ]
    if judged.pending:
        document["pending_delete"] = [
            {"id": s.id, "name": s.name, "from": s.pending_delete.isoformat()}
            for s in judged.pending
        ]
    return document


def _snapshot_document(snapshot: Snapshot | None, age: timedelta | None) -> dict | None:
    if snapshot is None:
        return None
    return {
        "id": snapshot.id,
        "name": snapshot.name,
        "created": iso_utc(snapshot.created),
        "age_seconds": int(age.total_seconds()) if age is not None else None,
    }


def _account_document(account: AccountStatus) -> dict:
    return {
        "account": account.account.name,
        "provider": account.account.provider,
        "unreadable": account.unreadable,
        "servers": account.servers,
        "uncovered": None
        if account.uncovered is None
        else [{"id": s.id, "name": s.name} for s in account.uncovered],
        "ignored": account.ignored,
        "snapshots": account.snapshots,
        "snapshot_limit": account.account.snapshot_limit,
        "problems": list(account.problems),
    }
