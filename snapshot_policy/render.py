"""Every text and JSON document the tool shows about plans and simulations.

The JSON form of a plan is a stable interface (documented in the README): keys are only
ever added, never renamed or removed, and `format_version` changes if that promise breaks.
"""

from __future__ import annotations

import json
import shlex
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from snapshot_policy.redaction import escape_controls
from snapshot_policy.model import ActionKind, Hooks, Plan, PlanAction, Price, RunReport, Snapshot, Target, TargetFailure, TargetPlan
from snapshot_policy.simulate import Projection, Simulation

if TYPE_CHECKING:
    from rich.text import Text

PLAN_FORMAT_VERSION = 1
_NO_OFFSET = timedelta(0)
_MARKS = {ActionKind.CREATE: "+", ActionKind.DELETE: "-", ActionKind.KEEP: "=", ActionKind.SKIP: "!"}
_STYLES = {"+": "green", "-": "red", "=": "dim", "!": "yellow"}
WIDTH = 80  # columns of a plan line, where the words allow
NO_PRICES: Mapping[str, Price] = {}
PROVIDER_NAMES = {"digitalocean": "DigitalOcean", "hetzner": "Hetzner"}


def iso_utc(moment: datetime) -> str:
    """Return `moment` as ISO-8601 in UTC with a `Z`, the one timestamp form of our documents."""
    if moment.utcoffset() == _NO_OFFSET and moment.year >= 1000:  # UTC already (most are): the same text, sooner
        return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_summary(plan: Plan, failures: Sequence[TargetFailure] = ()) -> str:
    refused = sum(1 for t in plan.targets if t.refusal)
    line = (
        f"Plan: {plan.count(ActionKind.CREATE)} to create, {plan.count(ActionKind.DELETE)} to delete, "
        f"{plan.count(ActionKind.KEEP)} to keep, {plan.count(ActionKind.SKIP)} skipped "
        f"across {len(plan.targets)} target(s)."
    )
    line += f" {refused} target(s) refused by safety limits." if refused else ""
    withheld = sum(1 for t in plan.targets if t.withheld)
    line += f" {withheld} target(s) with deletions withheld." if withheld else ""
    return line + (f" {len(failures)} target(s) failed." if failures else "")


def plan_text(plan: Plan, failures: Sequence[TargetFailure] = (), prices: Mapping[str, Price] = NO_PRICES) -> str:
    """Return the plan as the operator reads it: one block per target, the failures, the
    snapshot storage of all targets at `prices` (per provider), then the summary, in lines of
    at most WIDTH columns where the words allow."""
    blocks = [_target_text(t, prices) for t in plan.targets]
    blocks += [_wrap(escape_controls(f"{f.target}: FAILED: {f.reason}"), "    ") for f in failures]
    blocks += [_total_storage_text(plan, prices)] if plan.targets else []
    return "\n\n".join(blocks + [_sentences(plan_summary(plan, failures))]) + "\n"


def styled(text: str) -> Text:
    """`text` (a plan or a dry run) with colour for a terminal: creates green, deletions red,
    skips and problems yellow, kept snapshots dim. rich leaves the colour out when NO_COLOR is
    set; the caller uses this only when its output is a terminal."""
    from rich.text import Text

    result = Text()
    style = None
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if line.startswith("  ") and not line.startswith("    "):  # an action line; its continuation follows its style
            style = _STYLES.get(stripped[:1])
        elif not line.startswith("    "):
            style = "bold" if line.strip() and not line.startswith(" ") and ": " in line else None
        result.append(line, style=style)
    return result


def _target_text(plan: TargetPlan, prices: Mapping[str, Price]) -> str:
    target = plan.target
    lines = [f"{target.name}: {target.server_name} ({target.provider} server {target.server_id}, account {target.account})"]
    lines.append(f"  schedule {target.schedule.describe()}: {plan.schedule_note}")
    lines.append(f"  retention {target.retention.describe()} (timezone {target.timezone})")
    lines += [f"  hooks: {_hooks_text(target.hooks)}"] if target.hooks else []
    for action in plan.actions:
        lines.append(f"  {_action_text(action)}")
        lines += [f"      note: {action.snapshot.note}"] if action.snapshot.note else []
    if not plan.actions:
        lines.append("  (no snapshots)")
    now, after, estimate = target_storage(plan, prices)
    lines.append(f"  storage now: {_storage_text(now)}")
    if not plan.has_changes:
        lines.append("  after apply: unchanged")
    else:
        lines.append(f"  after apply: {_storage_text(after)}" + (f" (new one ~{_number(estimate)} GB)" if estimate is not None else ""))
    lines += [f"  ! {problem}" for problem in filter(None, (plan.refusal, plan.withheld, *plan.problems))]
    return "\n".join(_wrap(escape_controls(line), "      ") for line in lines)  # a name from an API cannot forge a line


def _action_text(action: PlanAction) -> str:
    snapshot = action.snapshot
    mark = _MARKS[action.kind]
    if action.kind is ActionKind.CREATE:
        return f"{mark} create {snapshot.name} (will be kept by: {', '.join(action.rules)})"
    flags = ", protected" if snapshot.protected and action.kind is ActionKind.KEEP else ""
    flags += ", adopted" if _adopted(snapshot) else ""
    return f"{mark} {action.kind.value} {snapshot.name} (id {snapshot.id}, {iso_utc(snapshot.created)[:16]}Z{flags}): {action.reason}"


def _hooks_text(hooks: Hooks) -> str:
    """What runs around the target's snapshot, as configured: a saved plan shows it too."""
    def command(value: tuple[str, ...] | str) -> str:
        return repr(value) if hooks.shell else shlex.join(value)

    parts = [f"{which} {command(getattr(hooks, which))}" for which in ("before", "after") if getattr(hooks, which)]
    return "; ".join(parts) + f" (timeout {hooks.timeout:g}s{', shell' if hooks.shell else ''})"


def _adopted(snapshot) -> bool:
    """Managed because snapshots.py named it so (or a killed run of ours started it), not by our marker."""
    return snapshot.managed and snapshot.ownership.startswith("adopted")


def _sentences(text: str) -> str:
    """`text` with a sentence that would pass WIDTH starting a new line."""
    lines = [""]
    for sentence in text.replace(". ", ".\0").split("\0"):
        if lines[-1] and len(lines[-1]) + 1 + len(sentence) > WIDTH:
            lines.append(sentence)
        else:
            lines[-1] = f"{lines[-1]} {sentence}".strip()
    return "\n".join(lines)


def _wrap(line: str, indent: str) -> str:
    """`line` in lines of at most WIDTH columns, broken at spaces (a long name stays whole);
    an action's reason starts its own line when the whole does not fit."""
    if len(line) <= WIDTH:
        return line
    head, colon, reason = line.partition("): ")
    if colon and line.lstrip()[:1] in _STYLES and len(head) + 1 <= WIDTH:
        return head + ")\n" + textwrap.fill(reason, WIDTH, initial_indent=indent, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
    return textwrap.fill(line, WIDTH, subsequent_indent=indent or "    ", break_long_words=False, break_on_hyphens=False)


@dataclass(frozen=True)
class Storage:
    """Snapshots stored, as billed: how many, the GB of those whose size is known, how many
    sizes are unknown (the GB and costs are then lower bounds), the monthly cost of the known
    sizes per currency, and whether a size in it is an estimate."""

    snapshots: int
    known_gb: float
    unknown: int
    costs: dict[str, float]
    estimated: bool

    @classmethod
    def of(cls, sizes: Iterable[tuple[str, float | None]], prices: Mapping[str, Price], estimated: bool = False) -> Storage:
        """Tally `(provider, size or None)` pairs; a provider without a price adds no cost."""
        snapshots, known, unknown, costs = 0, 0.0, 0, {}
        for provider, size in sizes:
            snapshots += 1
            if size is None:
                unknown += 1
                continue
            known += size
            price = prices.get(provider)
            if price is not None:
                costs[price.currency] = costs.get(price.currency, 0.0) + price.monthly(size)
        return cls(snapshots, known, unknown, costs, estimated)


def target_storage(plan: TargetPlan, prices: Mapping[str, Price]) -> tuple[Storage, Storage, float | None]:
    """Return the target's snapshots now and after apply, and the size its new snapshot is
    estimated at: that of the newest snapshot of the server whose size is known (None when
    nothing is to be created or no size is known). Every snapshot of the server is billed,
    managed or not."""
    provider = plan.target.provider
    existing = [a.snapshot for a in plan.actions if a.kind is not ActionKind.CREATE]
    remaining = [a.snapshot.size_gb for a in plan.actions if a.kind in (ActionKind.KEEP, ActionKind.SKIP)]
    estimate = _estimated_size(existing) if plan.create else None
    now = Storage.of(((provider, s.size_gb) for s in existing), prices)
    after = Storage.of(((provider, size) for size in remaining + ([estimate] if plan.create else [])), prices, estimate is not None)
    return now, after, estimate


def _estimated_size(snapshots: Iterable[Snapshot]) -> float | None:
    """The size of the newest snapshot whose size is known: a new one of the same disk is
    about as large."""
    sized = [s for s in snapshots if s.size_gb is not None]
    return max(sized, key=lambda s: (s.created, s.id)).size_gb if sized else None


def total_storage(plan: Plan, prices: Mapping[str, Price]) -> tuple[Storage, Storage]:
    """Return the snapshots of every target now and after apply, each counted once even when
    two targets cover one server."""
    now: dict[tuple, tuple[str, float | None]] = {}
    after: dict[tuple, tuple[str, float | None]] = {}
    estimated = False
    for target_plan in plan.targets:
        target = target_plan.target
        existing = [a for a in target_plan.actions if a.kind is not ActionKind.CREATE]
        for action in existing:
            key = (target.provider, target.account, action.snapshot.id)
            now[key] = (target.provider, action.snapshot.size_gb)
            if action.kind is not ActionKind.DELETE:
                after[key] = now[key]
        if target_plan.create:
            estimate = _estimated_size(a.snapshot for a in existing)
            after[(target.provider, target.account, target.server_id, target.name)] = (target.provider, estimate)
            estimated |= estimate is not None
    return Storage.of(now.values(), prices), Storage.of(after.values(), prices, estimated)


def _total_storage_text(plan: Plan, prices: Mapping[str, Price]) -> str:
    now, after = total_storage(plan, prices)
    lines = ["Snapshot storage of all targets:", f"  now:         {_storage_text(now)}"]
    lines.append(f"  after apply: {_storage_text(after) if plan.has_changes else 'unchanged'}")
    if after.estimated and plan.has_changes:
        lines.append("  (~ estimated: a new snapshot is counted as large as its server's newest)")
    providers = sorted({t.target.provider for t in plan.targets} & set(prices))
    if providers:
        listed = ", ".join(f"{prices[p].currency} {_number(prices[p].per_gb_month, 4)} ({PROVIDER_NAMES.get(p, p)})" for p in providers)
        lines.append(f"  at per GB-month prices of {listed}")
    return "\n".join(_wrap(line, "    ") for line in lines)


def _storage_text(storage: Storage) -> str:
    """`3 snapshots, ~12.6 GB, ~USD 0.76 a month` (~: estimated); with sizes unknown, what is
    known as a lower bound (`8.7+ GB`), never a total that merely leaves them out."""
    if not storage.snapshots:
        return "no snapshots"
    count = f"{storage.snapshots} snapshot{'' if storage.snapshots == 1 else 's'}"
    if storage.unknown == storage.snapshots:
        return f"{count} of unknown size"
    mark, more = "~" if storage.estimated else "", "+" if storage.unknown else ""
    text = count + (f" ({storage.unknown} of unknown size)" if storage.unknown else "") + f", {mark}{_number(storage.known_gb)}{more} GB"
    if storage.costs:
        text += ", " + " + ".join(f"{mark}{currency} {cost:.2f}{more}" for currency, cost in sorted(storage.costs.items())) + " a month"
    return text


def _number(value: float, decimals: int = 2) -> str:
    """`12.6`, `2.36`, `21`: at most `decimals` decimals, no trailing zeros."""
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def _storage_document(storage: Storage) -> dict:
    complete = not storage.unknown
    return {
        "snapshots": storage.snapshots,
        "unknown_sizes": storage.unknown,
        "size_gb": round(storage.known_gb, 3) if complete else None,
        "known_size_gb": round(storage.known_gb, 3),
        "monthly_cost": {c: round(v, 4) for c, v in sorted(storage.costs.items())} if complete else None,
        "known_monthly_cost": {c: round(v, 4) for c, v in sorted(storage.costs.items())},
        "estimated": storage.estimated,
    }


def plan_document(plan: Plan, failures: Sequence[TargetFailure] = (), prices: Mapping[str, Price] = NO_PRICES) -> dict:
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
        "failed": [{"target": f.target, "account": f.account, "reason": f.reason} for f in failures],
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
            "prices": {p: {"per_gb_month": prices[p].per_gb_month, "currency": prices[p].currency} for p in sorted(prices)},
            "now": _storage_document(now),
            "after_apply": _storage_document(after),
        },
    }


def plan_json(plan: Plan, failures: Sequence[TargetFailure] = (), prices: Mapping[str, Price] = NO_PRICES) -> str:
    return indented_json(plan_document(plan, failures, prices)) + "\n"


def indented_json(value: object) -> str:
    """Return `json.dumps(value, indent=2)`, character for character, in a fraction of its time.

    The standard library encodes in C only without `indent`; with it, every value passes
    through a chain of pure-Python generators (0.8 s for the 20 MB plan of 80,000 snapshots,
    this 0.35 s).
    This walks the JSON types (dict, list and tuple, str, int, float, bool, None) once,
    appending to one list, with the standard library's own string encoder. Anything else — a
    type JSON cannot encode, a key it would not take, a cycle — is handed to `json.dumps`,
    so the error raised is the standard library's too.
    """
    try:
        return "".join(_indented(value))
    except (TypeError, ValueError, RecursionError):
        return json.dumps(value, indent=2)


def _indented(value: object) -> list[str]:
    parts: list[str] = []
    append = parts.append
    encode_string = json.encoder.encode_basestring_ascii  # what json.dumps uses (ensure_ascii)
    constants = {None: "null", True: "true", False: "false"}
    keys: dict[str, str] = {}  # a key's encoding with its ": ", once per distinct key
    newlines = ["\n"]  # newlines[n]: a line break and the indent of nesting level n

    def newline(level: int) -> str:
        while len(newlines) <= level:
            newlines.append("\n" + "  " * len(newlines))
        return newlines[level]

    def walk(item: object, level: int) -> None:
        # Strings, constants and ints inside containers are written by the loops below,
        # without a call: most of a plan's values are.
        if isinstance(item, str):
            append(encode_string(item))
        elif item is None or item is True or item is False:
            append(constants[item])
        elif isinstance(item, int):
            append(int.__repr__(item))
        elif isinstance(item, float):
            append(_float_text(item))
        elif isinstance(item, (list, tuple)):
            if not item:
                append("[]")
                return
            inner = newline(level + 1)
            separator = "[" + inner
            for element in item:
                kind = type(element)
                if kind is str:
                    append(separator + encode_string(element))
                else:
                    append(separator)
                    walk(element, level + 1)
                separator = "," + inner
            append(newline(level) + "]")
        elif isinstance(item, dict):
            if not item:
                append("{}")
                return
            inner = newline(level + 1)
            separator = "{" + inner
            for key, element in item.items():
                encoded = keys.get(key) if type(key) is str else None
                if encoded is None:
                    if not isinstance(key, str):
                        raise TypeError("a key that is not a string: json.dumps converts it or says why not")
                    encoded = keys[key] = encode_string(key) + ": "
                kind = type(element)
                if kind is str:
                    append(separator + encoded + encode_string(element))
                elif kind is bool or element is None:
                    append(separator + encoded + constants[element])
                elif kind is int:
                    append(separator + encoded + int.__repr__(element))
                else:
                    append(separator + encoded)
                    walk(element, level + 1)
                separator = "," + inner
            append(newline(level) + "}")
        else:
            raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")

    walk(value, 0)
    return parts


def _float_text(number: float) -> str:
    """A float as json.dumps writes it (allow_nan: NaN and the infinities by name)."""
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    return float.__repr__(number)


def target_identity(target: Target) -> dict:
    """The keys that say which server a JSON entry (plan, report) is about."""
    return {
        "target": target.name,
        "provider": target.provider,
        "account": target.account,
        "server_id": target.server_id,
        "server_name": target.server_name,
    }


def _by_kind(plan: TargetPlan) -> dict[ActionKind, list[PlanAction]]:
    """The target's actions of each kind, in plan order (`TargetPlan.of_kind` for all kinds at once)."""
    by_kind: dict[ActionKind, list[PlanAction]] = {kind: [] for kind in ActionKind}
    for action in plan.actions:
        by_kind[action.kind].append(action)
    return by_kind


def _target_document(plan: TargetPlan, by_kind: dict[ActionKind, list[PlanAction]], prices: Mapping[str, Price]) -> dict:
    creates = by_kind[ActionKind.CREATE]
    create = creates[0] if creates else None
    now, after, estimate = target_storage(plan, prices)
    return {
        **target_identity(plan.target),
        "schedule": plan.target.schedule.describe(),
        "schedule_note": plan.schedule_note,
        "create": {"name": create.snapshot.name, "rules": list(create.rules), "estimated_size_gb": estimate} if create else None,
        "delete": [_snapshot_document(a, reason=True) for a in by_kind[ActionKind.DELETE]],
        "keep": [_snapshot_document(a, reason=False) for a in by_kind[ActionKind.KEEP]],
        "skip": [_snapshot_document(a, reason=True) for a in by_kind[ActionKind.SKIP]],
        "refused": plan.refusal,
        "withheld": plan.withheld,
        "problems": list(plan.problems),
        "storage": {"now": _storage_document(now), "after_apply": _storage_document(after)},
    }


def _snapshot_document(action: PlanAction, reason: bool) -> dict:
    snapshot = action.snapshot
    document = {
        "id": snapshot.id, "name": snapshot.name, "created": iso_utc(snapshot.created), "protected": snapshot.protected,
        "adopted": _adopted(snapshot), "ownership": snapshot.ownership, "size_gb": snapshot.size_gb,
    }
    if snapshot.note:
        document["note"] = snapshot.note
    if reason:
        document["reason"] = action.reason
    else:
        document["rules"] = list(action.rules)
    return document


def report_text(report: RunReport) -> str:
    """Return what apply did, a line per target (the summary line goes to stderr)."""
    lines = []
    for outcome in report.outcomes:
        target = outcome.plan.target
        head = f"{target.name}: {target.server_name} ({target.provider} server {target.server_id})"
        made = f"created {outcome.created.name}, " if outcome.created else "no new snapshot, "
        done = f"{made}deleted {len(outcome.deleted)}, {outcome.remaining} managed snapshot(s) remain"
        lines.append(f"{head}: {'ok' if outcome.ok else 'FAILED'}: {done}" + (f"; {outcome.error}" if outcome.error else ""))
    lines += [f"{f.target}: FAILED: {f.reason}" for f in report.failures]
    return "".join(escape_controls(line) + "\n" for line in lines)


def simulation_text(simulation: Simulation, projection: Projection | None = None) -> str:
    """Return a month-by-day calendar of survivors, then each survivor with its rules, then
    what the policy stores and costs in its steady state, given a `projection`."""
    survivors = simulation.survivors
    lines = [
        f"Simulated {simulation.days} day(s) from {simulation.start.astimezone(simulation.zone):%Y-%m-%d %H:%M %Z}, "
        f"{simulation.runs_per_day} run(s) a day: {simulation.created} snapshots made, "
        f"{simulation.deleted} deleted, {len(survivors)} survive.",
        f"Policy: {simulation.policy.describe()} (timezone {simulation.zone.key}).",
        "",
        "Timeline, one column per day (digit = snapshots that survive from that day, . = none):",
    ]
    per_day = Counter(s.created.astimezone(simulation.zone).date() for s, _ in survivors)
    for month_start, days in simulation.months():
        marks = "".join(_day_mark(per_day[day]) for day in days)
        lines.append(f"  {month_start:%Y-%m}  {' ' * (days[0].day - 1)}{marks}")
    lines += ["", "Survivors, newest first:"]
    lines += [f"  {s.created.astimezone(simulation.zone):%Y-%m-%d %H:%M}  {', '.join(rules)}" for s, rules in survivors]
    if projection is not None:
        lines += ["", *_projection_lines(projection)]
    return "\n".join(lines) + "\n"


def _projection_lines(projection: Projection) -> list[str]:
    steady, size = projection.steady, projection.size_gb
    count = str(steady.most) if steady.fewest == steady.most else f"{steady.fewest} to {steady.most}"
    lines = [
        f"Steady state (every rule full after {steady.filled_days} day(s); counted over the {steady.observed_days} days after):",
        f"  {count} snapshots, {_number(steady.average, 1)} on average",
        f"  at {_number(size)} GB a snapshot: {_number(steady.average * size, 1)} GB on average, {_number(steady.most * size, 1)} GB at most",
    ]
    for label, price in projection.prices:
        lines.append(
            f"  {price.currency} {price.monthly(steady.average * size):.2f} a month "
            f"at {price.currency} {_number(price.per_gb_month, 4)} per GB-month ({PROVIDER_NAMES.get(label, label)})"
        )
    return lines


def _day_mark(count: int) -> str:
    return "." if count == 0 else (str(count) if count < 10 else "+")


def simulation_json(simulation: Simulation, projection: Projection | None = None) -> str:
    document = {
        "policy": simulation.policy.describe(),
        "timezone": simulation.zone.key,
        "start": iso_utc(simulation.start),
        "days": simulation.days,
        "runs_per_day": simulation.runs_per_day,
        "created": simulation.created,
        "deleted": simulation.deleted,
        "survivors": [iso_utc(s.created) for s, _ in reversed(simulation.survivors)],
        "kept_by": {iso_utc(s.created): list(rules) for s, rules in reversed(simulation.survivors)},
    }
    if projection is not None:
        steady, size = projection.steady, projection.size_gb
        document["steady_state"] = {
            "filled_days": steady.filled_days,
            "observed_days": steady.observed_days,
            "fewest": steady.fewest,
            "most": steady.most,
            "average": round(steady.average, 3),
            "snapshot_size_gb": size,
            "average_size_gb": round(steady.average * size, 3),
            "most_size_gb": round(steady.most * size, 3),
            "monthly_cost": [
                {"price": label, "per_gb_month": price.per_gb_month, "currency": price.currency, "amount": round(price.monthly(steady.average * size), 4)}
                for label, price in projection.prices
            ],
        }
    return json.dumps(document, indent=2) + "\n"
