"""Every text the tool shows about plans, runs and simulations, and a simulation's JSON.

A plan's JSON form is the saved plan's document (planfile); its numbers of storage and cost
come from the cost model (cost).
"""

from __future__ import annotations

import json
import shlex
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from snapshot_policy.core import consistency, copies
from snapshot_policy.core.backups import Comparison, span_text
from snapshot_policy.core.cost import NO_PRICES, Storage, target_storage, total_storage
from snapshot_policy.core.model import (
    ActionKind,
    DrillPlan,
    DrillResult,
    Hooks,
    Plan,
    PlanAction,
    Price,
    RunReport,
    Target,
    TargetFailure,
    TargetPlan,
)
from snapshot_policy.core.overrides import describe_rules, describe_schedule
from snapshot_policy.core.ownership import adopted
from snapshot_policy.core.pricing import price_key
from snapshot_policy.core.redaction import escape_controls
from snapshot_policy.core.simulate import Projection, Simulation
from snapshot_policy.output.jsondoc import iso_utc

if TYPE_CHECKING:
    from rich.text import Text

_MARKS = {
    ActionKind.CREATE: "+",
    ActionKind.DELETE: "-",
    ActionKind.KEEP: "=",
    ActionKind.SKIP: "!",
    ActionKind.MARK_PENDING: "~",
    ActionKind.UNMARK_PENDING: "~",
    ActionKind.UNPIN: "~",
}
_STYLES = {"+": "green", "-": "red", "=": "dim", "!": "yellow", "~": "yellow"}
WIDTH = 80  # columns of a plan line, where the words allow
# Every name pattern holds {timestamp}, filled with the time apply runs (planfile.name_at_apply).
NAMED_AT_APPLY = (
    "The time in a + create name is this plan's. Apply names the snapshot for the time it runs."
)
PROVIDER_NAMES = {"digitalocean": "DigitalOcean", "hetzner": "Hetzner"}


def plan_summary(plan: Plan, failures: Sequence[TargetFailure] = ()) -> str:
    """The plan's last line. A target may cover several servers (a label selector, a list of
    names): its servers are counted apart from it, and refusals and withheld deletions,
    decided per server, count servers."""
    refused = sum(1 for t in plan.targets if t.refusal)
    line = (
        f"Plan: {plan.count(ActionKind.CREATE)} to create, "
        f"{plan.count(ActionKind.DELETE)} to delete, "
        f"{plan.count(ActionKind.KEEP)} to keep, {plan.count(ActionKind.SKIP)} skipped. "
        f"{_targets_with_servers(plan.targets)}."
    )
    line += _marks_summary(plan)
    line += f" {refused} server(s) refused by safety limits." if refused else ""
    withheld = sum(1 for t in plan.targets if t.withheld)
    line += f" {withheld} server(s) with deletions withheld." if withheld else ""
    failed = len({f.target for f in failures})
    return line + (f" {failed} target(s) failed." if failures else "")


def _marks_summary(plan: Plan) -> str:
    """` 2 to mark pending deletion, 1 to unmark, 1 to unpin.`: the marks apply writes (soft
    delete and pins, docs/promises.md §5.16); "" when none, so a plan without them reads as
    it always did."""
    words = (
        (ActionKind.MARK_PENDING, "to mark pending deletion"),
        (ActionKind.UNMARK_PENDING, "to unmark"),
        (ActionKind.UNPIN, "to unpin"),
    )
    parts = [f"{plan.count(kind)} {what}" for kind, what in words if plan.count(kind)]
    return f" {', '.join(parts)}." if parts else ""


def _targets_with_servers(plans: Sequence[TargetPlan]) -> str:
    """`2 target(s) with 4 server(s)`: each TargetPlan is one server of a named target."""
    targets = len({p.target.name for p in plans})
    return f"{targets} target(s) with {len(plans)} server(s)"


def plan_text(
    plan: Plan, failures: Sequence[TargetFailure] = (), prices: Mapping[str, Price] = NO_PRICES
) -> str:
    """Return the plan as the operator reads it: one block per target, the failures, the
    snapshot storage of all targets at `prices` (per provider), then the summary, in lines of
    at most WIDTH columns where the words allow."""
    drills = {_drill_key(d.target): d for d in plan.drills}
    blocks = [_target_text(t, prices, drills.pop(_drill_key(t.target), None)) for t in plan.targets]
    blocks += [drills_text(tuple(drills.values()))] if drills else []
    blocks += [
        wrap_line(escape_controls(f"{f.target}: FAILED: {f.reason}"), "    ") for f in failures
    ]
    blocks += [wrap_sentences(NAMED_AT_APPLY)] if plan.count(ActionKind.CREATE) else []
    blocks += [_total_storage_text(plan, prices)] if plan.targets else []
    return "\n\n".join(blocks + [wrap_sentences(plan_summary(plan, failures))]) + "\n"


def styled(text: str) -> Text:
    """`text` (a plan or a dry run) with colour for a terminal: creates green, deletions red,
    skips and problems yellow, kept snapshots dim. rich leaves the colour out when NO_COLOR is
    set; the caller uses this only when its output is a terminal."""
    from rich.text import Text

    result = Text()
    style = None
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if line.startswith("  ") and not line.startswith(
            "    "
        ):  # an action line; its continuation follows its style
            style = _STYLES.get(stripped[:1])
        elif not line.startswith("    "):
            style = "bold" if line.strip() and not line.startswith(" ") and ": " in line else None
        result.append(line, style=style)
    return result


def drill_line(drill: DrillPlan) -> str:
    """A target's restore drill as the plan shows it: what it restores, to what, where and at
    about what cost (core/drills.py says how that is estimated); why it is not due; or why it
    cannot be done."""
    head = f"drill every {drill.target.drill.every if drill.target.drill else '?'}"
    if not drill.due:
        return f"{head}: {drill.note}"
    if drill.refusal is not None:
        return f"{head}: due, but refused: {drill.refusal}"
    snapshot = drill.snapshot.name if drill.snapshot else "?"
    machine = drill.machine_type.name if drill.machine_type else "?"
    cost = "" if drill.cost is None else f"about {drill.currency} {_cost(drill.cost)} to "
    # the cost first: a wrapped line breaks the names at its end, never the amount
    return f"{head}: due \N{EM DASH} {cost}restore {snapshot} to {machine} in {drill.region}"


def drills_text(drills: Sequence[DrillPlan]) -> str:
    """Drills on their own (`drill --dry-run`), one line each under its target and server."""
    lines = []
    for drill in drills:
        target = drill.target
        lines.append(
            f"{target.name}: {target.server_name} "
            f"({target.provider} server {target.server_id}, account {target.account})"
        )
        lines.append(f"  {drill_line(drill)}")
    return "\n".join(wrap_line(escape_controls(line), "      ") for line in lines)


def _cost(value: float) -> str:
    """`0.01`, `0.0072`: cents, or four decimals for less than a cent, so a cost is never 0.00."""
    return f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.4f}"


def _drill_key(target: Target) -> tuple[str, str, str, str]:
    return (target.name, target.provider, target.account, target.server_id)


def _target_text(
    plan: TargetPlan, prices: Mapping[str, Price], drill: DrillPlan | None = None
) -> str:
    target = plan.target
    lines = [
        f"{target.name}: {target.server_name} "
        f"({target.provider} server {target.server_id}, account {target.account})"
        if not target.volume_of
        else f"{target.name}: {target.server_name} "
        f"({target.provider} volume {target.server_id} of droplet {target.volume_of}, "
        f"account {target.account})"
    ]
    sources = target.rule_sources  # a server's label or tag that overrides a rule (item 4)
    lines.append(f"  schedule {describe_schedule(target.schedule, sources)}: {plan.schedule_note}")
    lines.append(
        f"  retention {describe_rules(target.retention, sources)} (timezone {target.timezone})"
    )
    lines += [f"  hooks: {_hooks_text(target.hooks)}"] if target.hooks else []
    shutdown = consistency.plan_note(target, plan.create is not None)  # docs/promises.md §5.17
    lines += [f"  {shutdown}"] if shutdown else []
    lines += [f"  {drill_line(drill)}"] if drill is not None else []
    lines += _copies_head(plan)
    for action in plan.actions:
        lines.append(f"  {_action_text(action)}")
        lines += [f"      note: {action.snapshot.note}"] if action.snapshot.note else []
        lines += _copies_line(plan, action)
    if not plan.actions:
        lines.append("  (no snapshots)")
    now, after, estimate = target_storage(plan, prices)
    lines.append(f"  storage now: {storage_text(now)}")
    if not plan.has_changes:
        lines.append("  after apply: unchanged")
    else:
        lines.append(
            f"  after apply: {storage_text(after)}"
            + (f" (new one ~{_number(estimate)} GB)" if estimate is not None else "")
        )
    lines += [
        f"  ! {problem}" for problem in filter(None, (plan.refusal, plan.withheld, *plan.problems))
    ]
    return "\n".join(
        wrap_line(escape_controls(line), "      ") for line in lines
    )  # a name from an API cannot forge a line


def _copies_head(plan: TargetPlan) -> list[str]:
    """The regions a target copies to, and the transfers apply starts for the newest snapshot
    when none is due (docs/promises.md §5.15)."""
    target = plan.target
    if not target.copies:
        return []
    lines = [
        f"  copies: {', '.join(target.copies)}; older snapshots go only once the newest has each"
    ]
    due = copies.transfers_due(plan)
    if due is not None:
        snapshot, regions = due
        lines.append(f"  ~ copy {snapshot.name} (id {snapshot.id}) to {', '.join(regions)}")
    return lines


def _copies_line(plan: TargetPlan, action: PlanAction) -> list[str]:
    """Where a managed snapshot of a target with copies is, and what the newest lacks."""
    target, snapshot = plan.target, action.snapshot
    if not target.copies or not snapshot.managed:
        return []
    if action.kind is ActionKind.CREATE:
        return [f"      copied to {', '.join(target.copies)} once made, before any deletion"]
    if snapshot.cloud is None:
        return []
    if snapshot is copies.plan_newest(plan):
        return [f"      {copies.describe(target, snapshot)}"]
    return [f"      in {', '.join(copies.regions(snapshot)) or 'no region listed'}"]


def _action_text(action: PlanAction) -> str:
    snapshot = action.snapshot
    mark = _MARKS[action.kind]
    if action.kind is ActionKind.CREATE:
        return f"{mark} create {snapshot.name} (will be kept by: {', '.join(action.rules)})"
    flags = ", protected" if snapshot.protected and action.kind is ActionKind.KEEP else ""
    flags += ", adopted" if adopted(snapshot) else ""
    return (
        f"{mark} {action.kind.value} {snapshot.name} "
        f"(id {snapshot.id}, {iso_utc(snapshot.created)[:16]}Z{flags}): {action.reason}"
    )


def _hooks_text(hooks: Hooks) -> str:
    """What runs around the target's snapshot, as configured: a saved plan shows it too."""

    def command(value: tuple[str, ...] | str) -> str:
        return repr(value) if hooks.shell else shlex.join(value)

    parts = [
        f"{which} {command(getattr(hooks, which))}"
        for which in ("before", "after")
        if getattr(hooks, which)
    ]
    return "; ".join(parts) + f" (timeout {hooks.timeout:g}s{', shell' if hooks.shell else ''})"


def wrap_sentences(text: str) -> str:
    """`text` with a sentence that would pass WIDTH starting a new line."""
    lines = [""]
    for sentence in text.replace(". ", ".\0").split("\0"):
        if lines[-1] and len(lines[-1]) + 1 + len(sentence) > WIDTH:
            lines.append(sentence)
        else:
            lines[-1] = f"{lines[-1]} {sentence}".strip()
    return "\n".join(lines)


def fit(line: str) -> str:
    """`line` in lines of at most WIDTH columns, continued on lines indented by four: for a
    sentence printed to a terminal (apply's summary line, a warning)."""
    return wrap_line(line, "    ")


def wrap_line(line: str, indent: str) -> str:
    """`line` in lines of at most WIDTH columns, broken at spaces (a long name stays whole);
    an action's reason starts its own line when the whole does not fit."""
    if len(line) <= WIDTH:
        return line
    head, colon, reason = line.partition("): ")
    if colon and line.lstrip()[:1] in _STYLES and len(head) + 1 <= WIDTH:
        return (
            head
            + ")\n"
            + textwrap.fill(
                reason,
                WIDTH,
                initial_indent=indent,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return textwrap.fill(
        line,
        WIDTH,
        subsequent_indent=indent or "    ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _total_storage_text(plan: Plan, prices: Mapping[str, Price]) -> str:
    now, after = total_storage(plan, prices)
    lines = ["Snapshot storage of all targets:", f"  now:         {storage_text(now)}"]
    lines.append(f"  after apply: {storage_text(after) if plan.has_changes else 'unchanged'}")
    if after.estimated and plan.has_changes:
        lines.append("  (~ estimated: a new snapshot is counted as large as its server's newest)")
    used = {price_key(prices, t.target.provider, t.target.account) for t in plan.targets}
    providers = sorted(used & set(prices))
    if providers:
        listed = ", ".join(
            f"{prices[p].currency} {_number(prices[p].per_gb_month, 4)} ({price_label(p)})"
            for p in providers
        )
        lines.append(f"  at per GB-month prices of {listed}")
        lines += price_sources(prices, providers)
    return "\n".join(wrap_line(line, "    ") for line in lines)


def price_label(key: str) -> str:
    """`Hetzner`, or `Hetzner, account hz` for an account priced on its own (pricing.py)."""
    provider, _, account = key.partition("/")
    name = PROVIDER_NAMES.get(provider, provider)
    return f"{name}, account {account}" if account else name


def price_sources(prices: Mapping[str, Price], keys: Sequence[str]) -> list[str]:
    """One line per price saying where it came from (docs/promises.md §7)."""
    return [f"  {price_label(k)} price from {prices[k].source}" for k in keys if prices[k].source]


def storage_text(storage: Storage) -> str:
    """`3 snapshots, ~12.6 GB, ~USD 0.76 a month` (~: estimated); with sizes unknown, what is
    known as a lower bound (`8.7+ GB`), never a total that merely leaves them out."""
    if not storage.snapshots:
        return "no snapshots"
    count = f"{storage.snapshots} snapshot{'' if storage.snapshots == 1 else 's'}"
    if storage.unknown == storage.snapshots:
        return f"{count} of unknown size"
    mark, more = "~" if storage.estimated else "", "+" if storage.unknown else ""
    text = (
        count
        + (f" ({storage.unknown} of unknown size)" if storage.unknown else "")
        + f", {mark}{_number(storage.known_gb)}{more} GB"
    )
    if storage.costs:
        text += (
            ", "
            + " + ".join(
                f"{mark}{currency} {cost:.2f}{more}"
                for currency, cost in sorted(storage.costs.items())
            )
            + " a month"
        )
    return text


def _number(value: float, decimals: int = 2) -> str:
    """`12.6`, `2.36`, `21`: at most `decimals` decimals, no trailing zeros."""
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def matched_text(matched: Mapping[str, Sequence[Target]], failed: set[str] = frozenset()) -> str:
    """`validate --online`: per target, the servers it matched (`web: matched web-1
    (digitalocean server 3164444), …`), in lines of at most WIDTH columns. A target in
    `failed` that matched nothing has its reason printed already and no line here."""
    lines = []
    for name, targets in matched.items():
        if not targets:
            if name not in failed:
                lines.append(f"{name}: matched no server")
            continue
        servers = ", ".join(
            f"{t.server_name} ({t.provider} {'volume' if t.volume_of else 'server'} {t.server_id})"
            for t in targets
        )
        lines.append(f"{name}: matched {len(targets)} server(s): {servers}")
    return "".join(wrap_line(escape_controls(line), "    ") + "\n" for line in lines)


def report_text(report: RunReport, failed_only: bool = False) -> str:
    """Return what apply did, a line per server of each target, then a line per restore drill
    (the summary line goes to stderr), a line longer than WIDTH continued on lines indented by
    four; with `failed_only`, the lines of the targets and drills that failed (`apply
    --quiet`)."""
    lines = []
    for outcome in report.outcomes:
        if failed_only and outcome.ok:
            continue
        target = outcome.plan.target
        head = f"{target.name}: {target.server_name} ({target.provider} server {target.server_id})"
        if target.volume_of:  # volumes: true
            head = (
                f"{target.name}: {target.server_name} "
                f"({target.provider} volume {target.server_id} of droplet {target.volume_of})"
            )
        made = f"created {outcome.created.name}, " if outcome.created else "no new snapshot, "
        made += f"copied to {', '.join(outcome.copied_to)}, " if outcome.copied_to else ""
        done = (
            f"{made}deleted {len(outcome.deleted)}, {outcome.remaining} managed snapshot(s) remain"
        )
        if outcome.downtime_seconds is not None:  # consistency: shutdown, docs/promises.md §5.17
            done += f", server off for {outcome.downtime_seconds:g}s"
        lines.append(
            f"{head}: {'ok' if outcome.ok else 'FAILED'}: {done}"
            + (f"; {outcome.error}" if outcome.error else "")
        )
    lines += [f"{f.target}: FAILED: {f.reason}" for f in report.failures]
    lines += [drill_result_line(d) for d in report.drills if not (failed_only and drill_passed(d))]
    return "".join(wrap_line(escape_controls(line), "    ") + "\n" for line in lines)


def drill_passed(result: DrillResult) -> bool:
    """A drill that passed and whose server is gone: one that needs nobody."""
    return result.passed and result.deleted


def drill_result_line(result: DrillResult) -> str:
    """One line about a drill's result (apply's and drill's end, the log): the verdict, how
    long the restore took and to which server, the probe, and whether that server is deleted
    or left for the next run to delete (docs/promises.md §5)."""
    t = result.target
    where = f"{t.name}: {t.server_name} ({t.provider} server {t.server_id})"
    verdict = "passed" if result.passed else f"FAILED at {result.stage}"
    server = (
        f"{result.server_name} (id {result.server_id}, {result.machine_type} in {result.region})"
        if result.server_id is not None
        else ""
    )
    if result.restore_seconds is not None:
        made = f", restored in {restore_time(result.restore_seconds)} to {server or 'a server'}"
    elif server:
        made = f", server {server} never ran"
    else:
        made = ""
    probed = t.drill is not None and t.drill.probe is not None
    probe = ", probe passed" if result.passed and probed else ""
    error = f": {result.error}" if result.error and not result.passed else ""
    if not result.deleted:
        gone = "; its server is NOT deleted yet (the next run deletes it)"
    else:
        gone = "; its server is deleted" if result.server_id is not None else ""
    return f"{where}: drill of {result.snapshot.name} {verdict}{made}{probe}{error}{gone}"


def restore_time(seconds: float) -> str:
    """`0.4s`, `42s`: a restore time as people read it."""
    return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"


def drills_summary(results: Sequence[DrillResult]) -> str:
    """`2 drill(s): 1 passed, 1 failed (web)`, and the servers left for the next run to delete;
    a drill whose server is left counts as failed, as in the exit code."""
    passed = sum(map(drill_passed, results))
    failed = sorted({d.target.name for d in results if not drill_passed(d)})
    text = f"{len(results)} drill(s): {passed} passed, {len(results) - passed} failed"
    text += f" ({', '.join(failed)})" if failed else ""
    left = sum(not d.deleted for d in results)
    return text + (f", {left} server(s) left for the next run to delete" if left else "")


def uneventful(report: RunReport) -> bool:
    """True for a run that created, deleted, drilled and failed nothing and whose every
    notification, ping and file was delivered: apply prints nothing for it, so an hourly cron
    line mails only when something happened (README "Scheduling")."""
    return (
        report.exit_code == 0
        and not report.failures
        and not report.unwritten
        and not report.drills
        and all(d.ok for d in report.deliveries)
        and all(
            o.ok
            and o.created is None
            and not o.deleted
            and not o.relabelled  # a mark is news too: a deletion to come, or one taken back
            and not o.error
            and not o.partial
            and not o.copied_to  # a missing copy made (docs/promises.md §5.15) is news
            for o in report.outcomes
        )
    )


def report_failed(report: RunReport) -> bool:
    """True if something in the run failed, a notification included: what `apply --quiet`
    speaks of."""
    return report.exit_code != 0 or any(not d.ok for d in report.deliveries)


def report_summary(report: RunReport) -> str:
    """The one line that sums up an apply: for stderr, the healthcheck ping and the run report."""
    made = sum(o.created is not None for o in report.outcomes)
    deleted = sum(len(o.deleted) for o in report.outcomes)
    failed = [o.plan.target.name for o in report.outcomes if not o.ok]
    failed += [f.target for f in report.failures]
    seconds = (report.finished - report.started).total_seconds()
    # An outcome is one server of a target; a failure, a target (or one of its servers) that
    # could not be read.
    targets = len(
        {o.plan.target.name for o in report.outcomes} | {f.target for f in report.failures}
    )
    line = (
        f"snapshot-policy apply: {targets} target(s), {len(report.outcomes)} server(s), "
        f"{made} created, {deleted} deleted, {len(failed)} failed in {seconds:.1f}s"
    )
    line += f" (failed: {', '.join(sorted(set(failed)))})" if failed else ""
    line += _relabelled_summary(report)
    line += f"; {drills_summary(report.drills)}" if report.drills else ""
    undelivered = sum(not d.ok for d in report.deliveries)
    line += f"; {undelivered} notification(s) failed" if undelivered else ""
    return line + "".join(f"; {problem}" for problem in report.unwritten)


def _relabelled_summary(report: RunReport) -> str:
    """`; 3 marked pending deletion, 1 unmarked`: the marks apply wrote (docs/promises.md
    §5.16); "" when none, so a run without them is summed up as it always was."""
    words = {
        ActionKind.MARK_PENDING: "marked pending deletion",
        ActionKind.UNMARK_PENDING: "unmarked",
        ActionKind.UNPIN: "unpinned",
    }
    counts = {kind: 0 for kind in words}
    for outcome in report.outcomes:
        for action in outcome.relabelled:
            counts[action.kind] += 1
    parts = [f"{n} {words[kind]}" for kind, n in counts.items() if n]
    return f"; {', '.join(parts)}" if parts else ""


def simulation_text(
    simulation: Simulation,
    projection: Projection | None = None,
    comparison: Comparison | None = None,
) -> str:
    """Return a month-by-day calendar of survivors, then each survivor with its rules, then
    what the policy stores and costs in its steady state, given a `projection`."""
    survivors = simulation.survivors
    lines = [
        f"Simulated {simulation.days} day(s) "
        f"from {simulation.start.astimezone(simulation.zone):%Y-%m-%d %H:%M %Z}, "
        f"{simulation.runs_per_day} run(s) a day:",
        f"{simulation.created} snapshots made, {simulation.deleted} deleted, "
        f"{len(survivors)} survive.",
        f"Policy: {simulation.policy.describe()} (timezone {simulation.zone.key}).",
        "",
        "Timeline, one column per day",
        "(a digit: the snapshots that survive from that day; a dot: none):",
    ]
    lines = [wrap_line(line, "  ") for line in lines]
    per_day = Counter(s.created.astimezone(simulation.zone).date() for s, _ in survivors)
    for month_start, days in simulation.months():
        marks = "".join(_day_mark(per_day[day]) for day in days)
        lines.append(f"  {month_start:%Y-%m}  {' ' * (days[0].day - 1)}{marks}")
    lines += ["", "Survivors, newest first:"]
    lines += [
        f"  {s.created.astimezone(simulation.zone):%Y-%m-%d %H:%M}  {', '.join(rules)}"
        for s, rules in survivors
    ]
    if projection is not None:
        lines += ["", *(wrap_line(line, "    ") for line in _projection_lines(projection))]
    if comparison is not None:
        lines += ["", *(wrap_line(line, "      ") for line in backup_lines(comparison))]
    return "\n".join(lines) + "\n"


def backup_lines(comparison: Comparison) -> list[str]:
    """Snapshots against the provider's backups for the same rules (core/backups.py): each
    plan's monthly cost, whether it keeps the rules, and which is cheaper."""
    currency, need = comparison.currency, comparison.needs
    name = PROVIDER_NAMES.get(comparison.provider, comparison.provider)
    lines = [
        f"Backups instead, for the same rules ({name}, a server of "
        f"{currency} {comparison.server_price:.2f} a month):",
        f"  the rules keep one every {span_text(need.every)}, "
        f"reaching back {span_text(need.reach)}",
        f"  snapshots: {currency} {comparison.snapshots_monthly:.2f} a month",
    ]
    for option in comparison.options:
        plan = option.plan
        priced = (
            f"{_number(plan.share * 100)} % of the server"
            if plan.share is not None
            else f"USD {_number(plan.per_gb_month or 0, 3)} per GB-month"
        )
        verdict = (
            "keeps these rules"
            if option.why_not is None
            else f"cannot keep these rules: {option.why_not}"
        )
        lines.append(
            f"  {plan.name}: {option.currency} {option.monthly:.2f} a month ({priced}, "
            f"{option.backups} kept): {verdict}"
        )
    cheaper = comparison.cheaper()
    if cheaper is not None:
        lines.append(
            f"  Cheaper: {cheaper.plan.name}, {cheaper.currency} {cheaper.monthly:.2f} against "
            f"{currency} {comparison.snapshots_monthly:.2f} a month for snapshots."
        )
    elif any(o.why_not is None for o in comparison.options):
        lines.append("  Cheaper: snapshots.")
    else:
        lines.append("  Cheaper: snapshots; no backup plan keeps these rules.")
    lines += sorted({f"  ({o.plan.source})" for o in comparison.options})
    return lines


def _projection_lines(projection: Projection) -> list[str]:
    steady, size = projection.steady, projection.size_gb
    count = (
        str(steady.most) if steady.fewest == steady.most else f"{steady.fewest} to {steady.most}"
    )
    lines = [
        f"Steady state, every rule full after {steady.filled_days} day(s)",
        f"(counted over the {steady.observed_days} days after):",
        f"  {count} snapshots, {_number(steady.average, 1)} on average",
        f"  at {_number(size)} GB a snapshot: {_number(steady.average * size, 1)} GB on average, "
        f"{_number(steady.most * size, 1)} GB at most",
    ]
    for label, price in projection.prices:
        lines.append(
            f"  {price.currency} {price.monthly(steady.average * size):.2f} a month "
            f"at {price.currency} {_number(price.per_gb_month, 4)} per GB-month "
            f"({PROVIDER_NAMES.get(label, label)})"
        )
    return lines + price_sources(dict(projection.prices), [label for label, _ in projection.prices])


def _day_mark(count: int) -> str:
    return "." if count == 0 else (str(count) if count < 10 else "+")


def simulation_json(
    simulation: Simulation,
    projection: Projection | None = None,
    comparison: Comparison | None = None,
) -> str:
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
                {
                    "price": label,
                    "per_gb_month": price.per_gb_month,
                    "currency": price.currency,
                    "amount": round(price.monthly(steady.average * size), 4),
                }
                for label, price in projection.prices
            ],
        }
    if comparison is not None:
        cheaper = comparison.cheaper()
        document["backups"] = {
            "provider": comparison.provider,
            "server_price": comparison.server_price,
            "currency": comparison.currency,
            "every_hours": comparison.needs.every.total_seconds() / 3600,
            "reach_days": round(comparison.needs.reach.total_seconds() / 86400, 3),
            "snapshots_monthly": round(comparison.snapshots_monthly, 4),
            "plans": [
                {
                    "name": o.plan.name,
                    "monthly": round(o.monthly, 4),
                    "currency": o.currency,
                    "kept": o.backups,
                    "keeps_the_rules": o.why_not is None,
                    "why_not": o.why_not,
                    "source": o.plan.source,
                }
                for o in comparison.options
            ],
            "cheaper": cheaper.plan.name if cheaper else "snapshots",
        }
    return json.dumps(document, indent=2) + "\n"
