"""The Executor carrying plans out through the real SDKs (pydo, hcloud) against the sandbox.

Proves docs/promises.md §5 invariants 2 and 4 at the place they are enforced: a due snapshot is
made, then exactly the plan's deletions happen (and only those retention still deletes once the
new snapshot counts); a failed create deletes nothing for its target while other targets
go on; a refused plan creates but deletes nothing; a failed deletion fails its target only.
Also the journal around each create, the audit lines, progress stages, `remaining`, the
run's exit code and summary, and the spacing of starts by delay_between_servers.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    Account,
    ActionKind,
    Delivery,
    Hooks,
    Outcome,
    Plan,
    RetentionPolicy,
    RunReport,
    Safety,
    Schedule,
    Selector,
    Target,
    TargetFailure,
    TargetPlan,
    TargetSpec,
)
from snapshot_policy.core.ownership import (
    DIGITALOCEAN_TAG,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVER_ID_LABEL,
    snapshots_for,
)
from snapshot_policy.core.reconcile import build_plan
from snapshot_policy.edges.providers import connect
from snapshot_policy.edges.providers.retry import RetryPolicy, Timing
from snapshot_policy.engine.execute import Executor
from snapshot_policy.engine.observe import observe
from snapshot_policy.output.render import report_summary
from snapshot_policy.state.audit import AuditLog
from snapshot_policy.state.journal import Journal
from tests.integration.conftest import DO_TOKEN, EPOCH, HZ_TOKEN

TIMING = Timing(request_timeout=2, creation_timeout=5, poll_interval=0.02)
IN_FLIGHT = timedelta(hours=1)
WEB = Target("web", DIGITALOCEAN, "do-a", "101", "web-1", RetentionPolicy(keep_last=2))
APP = Target("app", HETZNER, "hz-a", "301", "app-1", RetentionPolicy(keep_last=2))
TARGETS = {DIGITALOCEAN: WEB, HETZNER: APP}
BOTH = pytest.mark.parametrize("provider", [DIGITALOCEAN, HETZNER])


def managed(target: Target, created) -> dict:
    """A sandbox snapshot of the target's server carrying the marker the tool puts on its own."""
    snapshot = {
        "account": target.account,
        "server_id": int(target.server_id),
        "name": f"{target.server_name}-{created:%Y%m%d%H%M%S}",
        "created": created.isoformat(),
    }
    if target.provider == DIGITALOCEAN:
        return {**snapshot, "tags": [DIGITALOCEAN_TAG]}
    return {
        **snapshot,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVER_ID_LABEL: target.server_id},
    }


def add_snapshots(sandbox, *snapshots: dict) -> None:
    state = sandbox.dump_state()
    state["snapshots"] += snapshots
    sandbox.load_state(state)


@pytest.fixture
def cloud(sandbox):
    """web-1 (DigitalOcean) and app-1 (Hetzner) each with managed snapshots 1, 2 and 3 days
    old and one unmanaged snapshot: keep_last 2 creates one and deletes the two oldest."""
    add_snapshots(
        sandbox, *(managed(t, EPOCH - timedelta(days=d)) for t in (WEB, APP) for d in (1, 2, 3))
    )
    add_snapshots(
        sandbox,
        *(
            {
                "account": t.account,
                "server_id": int(t.server_id),
                "name": f"{t.server_name}-before-upgrade",
                "created": (EPOCH - timedelta(days=30)).isoformat(),
            }
            for t in (WEB, APP)
        ),
    )
    return sandbox


@pytest.fixture
def providers(sandbox):
    retry = RetryPolicy(sleep=lambda seconds: time.sleep(min(seconds, 0.02)), jitter=lambda: 0.5)
    return {
        "do-a": connect(
            Account("do-a", DIGITALOCEAN, DO_TOKEN, sandbox.digitalocean_endpoint), TIMING, retry
        ),
        "hz-a": connect(
            Account("hz-a", HETZNER, HZ_TOKEN, sandbox.hetzner_endpoint), TIMING, retry
        ),
    }


@pytest.fixture
def journal(tmp_path, clock) -> Journal:
    return Journal(tmp_path / "journal.json", IN_FLIGHT, now=clock())


def plan_for(providers, clock, *targets: Target, journal: Journal | None = None) -> Plan:
    """Observe and plan as `apply` does: one listing per target's account, classified."""
    observed = []
    for target in targets:
        pending = journal.pending(target.account, target.server_id) if journal else ()
        observed.append(
            (target, snapshots_for(target, providers[target.account].snapshots(), pending))
        )
    return build_plan(observed, clock())


def executor(providers, journal, clock, tmp_path, plan: Plan, **options) -> Executor:
    return Executor(
        providers,
        journal,
        AuditLog(tmp_path / "audit.jsonl", plan.fingerprint),
        now=clock,
        **{"timing": TIMING, **options},
    )


def names_on(sandbox, target: Target) -> set[str]:
    return {
        s["name"]
        for s in sandbox.dump_state()["snapshots"]
        if (s["account"], s["server_id"]) == (target.account, int(target.server_id))
    }


def audit(tmp_path) -> list[tuple[str, str, str]]:
    path = tmp_path / "audit.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [(line["event"], line["target"], line["snapshot_name"]) for line in lines]


def doomed(plan: Plan, target: Target) -> list:
    return [
        a.snapshot for p in plan.targets if p.target == target for a in p.of_kind(ActionKind.DELETE)
    ]


@BOTH
def test_executor_creates_the_due_snapshot_then_deletes_exactly_the_planned_ones(
    cloud, providers, journal, clock, tmp_path, provider
):
    target = TARGETS[provider]
    plan = plan_for(providers, clock, target)
    gone = doomed(plan, target)
    assert [s.name for s in gone] == [
        f"{target.server_name}-20241230000000",
        f"{target.server_name}-20241229000000",
    ]
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    (outcome,) = report.outcomes
    new = f"{target.server_name}-20250101000000"
    assert outcome.ok and outcome.error is None
    assert outcome.created.name == new and outcome.created.managed
    assert outcome.deleted == tuple(gone)
    assert outcome.remaining == 2
    assert names_on(cloud, target) == {
        new,
        f"{target.server_name}-20241231000000",
        f"{target.server_name}-before-upgrade",
    }
    lines = audit(tmp_path)
    assert lines[0] == (
        "created",
        target.name,
        new,
    )  # deletions are sent at the same time: any order
    assert sorted(lines[1:]) == sorted(("deleted", target.name, s.name) for s in gone)
    assert report.exit_code == 0
    assert report_summary(report) == (
        "snapshot-policy apply: 1 target(s), 1 server(s), 1 created, 2 deleted, 0 failed in 0.0s"
    )


def test_executor_deletes_nothing_for_a_target_whose_create_failed_while_the_other_cloud_succeeds(
    cloud, providers, journal, clock, tmp_path
):
    cloud.inject("fail_action", service=DIGITALOCEAN)
    before = names_on(cloud, WEB)
    plan = plan_for(providers, clock, WEB, APP)
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    outcomes = {o.plan.target.name: o for o in report.outcomes}
    assert (
        not outcomes["web"].ok and outcomes["web"].created is None and outcomes["web"].deleted == ()
    )
    assert "ended errored" in outcomes["web"].error
    assert names_on(cloud, WEB) == before
    assert outcomes["app"].ok and outcomes["app"].deleted == tuple(doomed(plan, APP))
    assert names_on(cloud, APP) == {
        "app-1-20250101000000",
        "app-1-20241231000000",
        "app-1-before-upgrade",
    }
    assert [event for event, target, _ in audit(tmp_path) if target == "web"] == []
    assert report.exit_code == 2
    assert report_summary(report) == (
        "snapshot-policy apply: 2 target(s), 2 server(s), 1 created, 2 deleted, 1 failed in 0.0s"
        " (failed: web)"
    )


def test_executor_counts_the_untouched_snapshots_of_a_target_whose_create_failed(
    cloud, providers, journal, clock, tmp_path
):
    cloud.inject("fail_action", service=DIGITALOCEAN)
    plan = plan_for(providers, clock, WEB)
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert not outcome.ok and outcome.remaining == 3


def test_executor_exit_code_is_1_when_every_target_fails(
    cloud, providers, journal, clock, tmp_path
):
    cloud.inject("fail_action", count=2)
    plan = plan_for(providers, clock, WEB, APP)
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    assert [o.ok for o in report.outcomes] == [False, False]
    assert audit(tmp_path) == []
    assert report.exit_code == 1
    assert report_summary(report) == (
        "snapshot-policy apply: 2 target(s), 2 server(s), 0 created, 0 deleted, 2 failed in 0.0s"
        " (failed: app, web)"
    )


def test_run_report_counts_targets_that_could_not_be_planned_as_failed():
    ok = Outcome(TargetPlan(WEB, (), "not due"), ok=True)
    failure = TargetFailure("db", "cannot read account do-b: HTTP 401")
    undelivered = Delivery("ops", "telegram", "web", ok=False, attempts=3, error="HTTP 502")
    assert RunReport(EPOCH, EPOCH, (ok,)).exit_code == 0
    assert RunReport(EPOCH, EPOCH, (ok,), (failure,)).exit_code == 2
    assert RunReport(EPOCH, EPOCH, (), (failure,)).exit_code == 1
    report = RunReport(EPOCH, EPOCH + timedelta(seconds=12.34), (ok,), (failure,), (undelivered,))
    assert report.exit_code == 2  # a failed notification never changes the exit code
    assert report_summary(report) == (
        "snapshot-policy apply: 2 target(s), 1 server(s), 0 created, 0 deleted, 1 failed in 12.3s"
        " (failed: db); 1 notification(s) failed"
    )


def test_executor_creates_but_deletes_nothing_when_the_plan_is_refused(
    cloud, providers, journal, clock, tmp_path
):
    target = replace(APP, safety=Safety(max_deletions=1))
    before = names_on(cloud, target)
    plan = plan_for(providers, clock, target)
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    (outcome,) = report.outcomes
    refusal = (
        "refused: 2 deletions exceed max_deletions 1; raise the limit or check the retention rules"
    )
    assert not outcome.ok and outcome.error == refusal
    assert outcome.created.name == "app-1-20250101000000" and outcome.deleted == ()
    assert outcome.remaining == 4
    assert names_on(cloud, target) == before | {"app-1-20250101000000"}
    assert audit(tmp_path) == [("created", "app", "app-1-20250101000000")]
    assert report.exit_code == 1


def test_executor_keeps_a_planned_deletion_that_retention_with_the_new_snapshot_keeps(
    cloud, providers, journal, clock, tmp_path
):
    # Planned a minute before midnight, made a minute after: the new snapshot opens a new
    # day, so the earlier snapshot of the planned day becomes that day's newest and is kept.
    target = replace(WEB, retention=RetentionPolicy(keep_daily=2))
    add_snapshots(cloud, managed(target, EPOCH + timedelta(hours=1)))
    clock.advance(hours=23, minutes=59, seconds=30)
    plan = plan_for(providers, clock, target)
    assert [s.name for s in doomed(plan, target)] == [
        "web-1-20250101010000",
        "web-1-20241230000000",
        "web-1-20241229000000",
    ]
    clock.advance(minutes=1)
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert outcome.ok
    assert [s.name for s in outcome.deleted] == ["web-1-20241230000000", "web-1-20241229000000"]
    assert names_on(cloud, target) == {
        "web-1-20250101235930",
        "web-1-20250101010000",
        "web-1-20241231000000",
        "web-1-before-upgrade",
    }
    assert outcome.remaining == 3


@BOTH
def test_executor_reports_a_failed_deletion_and_still_makes_the_others(
    cloud, providers, journal, clock, tmp_path, provider
):
    target = TARGETS[provider]
    plan = plan_for(providers, clock, target)
    stuck, other = doomed(plan, target)
    cloud.inject(
        "error", service=provider, method="DELETE", path=rf"/{stuck.id}$", status=500, count=None
    )
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    (outcome,) = report.outcomes
    assert not outcome.ok
    assert outcome.error.startswith(
        f"delete {stuck.name}: {provider} delete snapshot failed (HTTP 500)"
    )
    assert outcome.created is not None and outcome.deleted == (other,)
    assert outcome.remaining == 3
    assert stuck.name in names_on(cloud, target) and other.name not in names_on(cloud, target)
    assert [event for event, _, name in audit(tmp_path)] == ["created", "deleted"]
    assert report.exit_code == 1


def test_executor_reports_each_targets_stages_in_order(cloud, providers, journal, clock, tmp_path):
    quiet = Target(
        "quiet",
        HETZNER,
        "hz-a",
        "302",
        "app-2",
        RetentionPolicy(keep_last=2),
        Schedule(cron="0 3 * * *"),
    )
    add_snapshots(cloud, managed(quiet, EPOCH - timedelta(hours=1)))
    cloud.inject("fail_action", service=DIGITALOCEAN)
    stages: dict[str, list[str]] = {}
    plan = plan_for(providers, clock, WEB, APP, quiet)
    executor(
        providers,
        journal,
        clock,
        tmp_path,
        plan,
        progress=lambda t, stage: stages.setdefault(t.name, []).append(stage),
    ).apply(plan)
    assert stages == {
        "app": ["waiting", "creating", "deleting", "done"],
        "web": ["waiting", "creating", "failed"],
        "quiet": ["waiting", "done"],
    }


class JournalSpy:
    """The real adapter; notes what a fresh read of the journal file holds as each create starts."""

    def __init__(self, provider, path, clock):
        self._provider, self._path, self._clock = provider, path, clock
        self.pending_at_create: list[dict] = []
        self.deletions_at_delete: list[dict] = []

    def __getattr__(self, name):
        return getattr(self._provider, name)

    def start_snapshot(self, server_id, name, labels):
        self.pending_at_create.append(
            Journal(self._path, IN_FLIGHT, now=self._clock()).pending(WEB.account, server_id)
        )
        return self._provider.start_snapshot(server_id, name, labels)

    def delete_snapshot(self, snapshot_id):
        self.deletions_at_delete.append(
            (
                snapshot_id,
                set(
                    Journal(self._path, IN_FLIGHT, now=self._clock()).deletions(
                        WEB.account, WEB.server_id
                    )
                ),
            )
        )
        return self._provider.delete_snapshot(snapshot_id)


def test_executor_journals_the_start_before_creating_and_crosses_it_off_after(
    cloud, providers, journal, clock, tmp_path
):
    spy = JournalSpy(providers["do-a"], tmp_path / "journal.json", clock)
    plan = plan_for(providers, clock, WEB)
    (outcome,) = executor({"do-a": spy}, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert outcome.ok
    assert spy.pending_at_create == [{"web-1-20250101000000": EPOCH}]
    assert journal.pending("do-a", "101") == {}
    assert Journal(tmp_path / "journal.json", IN_FLIGHT, now=clock()).pending("do-a", "101") == {}


@pytest.mark.parametrize(
    "fault, kept",
    [
        (
            {"kind": "fail_action"},
            False,
        ),  # the cloud said the snapshot failed: it will never appear
        (
            {
                "kind": "error",
                "status": 503,
                "method": "POST",
                "path": r"/droplets/101/actions$",
                "count": None,
            },
            True,
        ),  # it may yet appear
    ],
    ids=["certain-failure", "may-have-started"],
)
def test_executor_keeps_the_journal_entry_only_while_a_failed_create_may_still_appear(
    cloud, providers, journal, clock, tmp_path, fault, kept
):
    cloud.inject(service=DIGITALOCEAN, **fault)
    plan = plan_for(providers, clock, WEB)
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert not outcome.ok and outcome.deleted == ()
    pending = Journal(tmp_path / "journal.json", IN_FLIGHT, now=clock()).pending("do-a", "101")
    assert pending == ({"web-1-20250101000000": EPOCH} if kept else {})


def test_executor_marks_and_records_a_snapshot_an_interrupted_run_left_unmarked(
    cloud, providers, journal, clock, tmp_path
):
    left = {
        "account": "do-a",
        "server_id": 101,
        "name": "web-1-20241231230000",
        "created": (EPOCH - timedelta(hours=1)).isoformat(),
    }
    add_snapshots(cloud, left)
    journal.started("do-a", "101", left["name"], EPOCH - timedelta(hours=1))
    target = replace(WEB, retention=RetentionPolicy(keep_last=10))
    plan = plan_for(providers, clock, target, journal=journal)
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert outcome.ok and outcome.remaining == 5
    tags = {s["name"]: s["tags"] for s in cloud.dump_state()["snapshots"] if s["account"] == "do-a"}
    assert DIGITALOCEAN_TAG in tags[left["name"]]
    assert audit(tmp_path) == [
        ("adopted", "web", left["name"]),
        ("created", "web", "web-1-20250101000000"),
    ]
    assert journal.pending("do-a", "101") == {}


def test_executor_finishes_the_run_when_the_audit_log_cannot_be_written_and_fails_the_target(
    cloud, providers, journal, clock, tmp_path
):
    """The changes stand, but a trail that lacks them fails the target (issue 19)."""
    (tmp_path / "blocked").write_text("a file where the audit log's folder should be")
    plan = plan_for(providers, clock, APP)
    audit_log = AuditLog(tmp_path / "blocked" / "audit.jsonl", plan.fingerprint)
    report = Executor(providers, journal, audit_log, now=clock).apply(plan)
    (outcome,) = report.outcomes
    assert outcome.created is not None and len(outcome.deleted) == 2
    assert (
        not outcome.ok
        and outcome.error.count("but could not write the audit log: cannot use audit log") == 3
    )
    assert report.exit_code == 1


def test_executor_spaces_snapshot_starts_by_delay_between_servers(
    sandbox, providers, journal, clock, tmp_path
):
    targets = [
        replace(APP, name=f"app{n}", server_id=str(sid), server_name=name)
        for n, (sid, name) in enumerate([(301, "app-1"), (302, "app-2")])
    ]
    plan = plan_for(providers, clock, *targets)
    report = executor(providers, journal, clock, tmp_path, plan, delay_between_servers=0.3).apply(
        plan
    )
    assert report.exit_code == 0
    starts = [
        r["time"]
        for r in sandbox.requests(HETZNER)
        if r["method"] == "POST" and r["path"].endswith("/create_image")
    ]
    assert (
        len(starts) == 2 and starts[1] - starts[0] >= 0.25
    )  # logged as answered: allow for the first reply's own time


def test_executor_starts_no_more_than_parallel_snapshots_at_once(
    sandbox, providers, journal, clock, tmp_path
):
    """With parallel 1 the second start waits until the first snapshot is confirmed."""
    targets = [
        replace(APP, name=f"app{n}", server_id=str(sid), server_name=name)
        for n, (sid, name) in enumerate([(301, "app-1"), (302, "app-2")])
    ]
    plan = plan_for(providers, clock, *targets)
    assert (
        executor(providers, journal, clock, tmp_path, plan, parallel=1).apply(plan).exit_code == 0
    )
    log = [(r["method"], r["path"]) for r in sandbox.requests(HETZNER)]
    second_start = [i for i, (method, path) in enumerate(log) if path.endswith("/create_image")][1]
    assert ("GET", "/v1/actions") in log[:second_start]


# -- crash windows (docs/promises.md §5, invariant 7) ---------------------------------------


def observed_plan(providers, journal, clock, *targets: Target) -> Plan:
    """Observe as apply does, journal placeholders included, and plan."""
    specs = [
        TargetSpec(
            t.name,
            Account(t.account, t.provider, ""),
            Selector(ids=(t.server_id,)),
            t.retention,
            adopt_legacy_names=False,
        )
        for t in targets
    ]
    return build_plan(
        observe(
            specs, lambda account: providers[account.name], orphans=False, journal=journal
        ).observed,
        clock(),
    )


def test_executor_keeps_a_journal_start_open_while_its_snapshot_is_not_listed_yet(
    cloud, providers, journal, clock, tmp_path
):
    """Killed after the POST, before the snapshot exists: the next run must neither cross the
    start off against its placeholder nor make a second snapshot; once the snapshot is listed,
    a run marks it, audits it once and closes the start."""
    started = "web-1-20250101000000"
    cloud.state.action_seconds = 0.5
    providers["do-a"]._client.droplet_actions.post(
        droplet_id=101, body={"type": "snapshot", "name": started}
    )
    journal.started(WEB.account, WEB.server_id, started, clock())
    plan = observed_plan(providers, journal, clock, WEB)
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert outcome.created is None and started in journal.pending(WEB.account, WEB.server_id)
    time.sleep(0.6)
    clock.advance(minutes=10)
    plan = observed_plan(providers, journal, clock, WEB)
    executor(providers, journal, clock, tmp_path, plan).apply(plan)
    made = [s for s in cloud.dump_state()["snapshots"] if s["name"] == started]
    assert len(made) == 1 and DIGITALOCEAN_TAG in made[0]["tags"]
    assert [line for line in audit(tmp_path) if line[2] == started] == [("adopted", "web", started)]
    assert journal.pending(WEB.account, WEB.server_id) == {}


@BOTH
def test_executor_audits_once_a_deletion_an_interrupted_run_sent(
    cloud, providers, journal, clock, tmp_path, provider
):
    """The deletion is written down before it is sent; the next run finds the snapshot gone
    and writes the audit line the killed run could not."""
    target = TARGETS[provider]
    doomed_one = doomed(plan_for(providers, clock, target), target)[0]
    journal.deleting(
        target.account,
        target.server_id,
        doomed_one.id,
        doomed_one.name,
        "no retention rule keeps it",
        clock(),
    )
    providers[target.account].delete_snapshot(doomed_one.id)  # sent; then the run was killed
    for _ in range(2):
        plan = plan_for(providers, clock, target)
        executor(providers, journal, clock, tmp_path, plan).apply(plan)
    assert [line for line in audit(tmp_path) if line[2] == doomed_one.name] == [
        ("deleted", target.name, doomed_one.name)
    ]
    assert journal.deletions(target.account, target.server_id) == {}


@BOTH
def test_executor_audits_no_second_time_a_deletion_a_killed_run_audited_but_did_not_cross_off(
    cloud, providers, journal, clock, tmp_path, provider
):
    """Killed between the audit line and the journal's write: the next run finds the line and
    writes no second one (issue 19, found by the proof's state machine)."""
    target = TARGETS[provider]
    plan = plan_for(providers, clock, target)
    doomed_one = doomed(plan, target)[0]
    journal.deleting(
        target.account,
        target.server_id,
        doomed_one.id,
        doomed_one.name,
        "no retention rule keeps it",
        clock(),
    )
    providers[target.account].delete_snapshot(doomed_one.id)
    AuditLog(tmp_path / "audit.jsonl", plan.fingerprint).record(
        "deleted", target, doomed_one, "no retention rule keeps it", clock()
    )
    plan = plan_for(providers, clock, target)
    executor(providers, journal, clock, tmp_path, plan).apply(plan)
    assert [line for line in audit(tmp_path) if line[2] == doomed_one.name] == [
        ("deleted", target.name, doomed_one.name)
    ]
    assert journal.deletions(target.account, target.server_id) == {}


def test_executor_closes_without_audit_a_deletion_that_never_happened(
    cloud, providers, journal, clock, tmp_path
):
    kept = plan_for(providers, clock, WEB).targets[0].of_kind(ActionKind.KEEP)[0].snapshot
    journal.deleting(
        WEB.account, WEB.server_id, kept.id, kept.name, "no retention rule keeps it", clock()
    )
    plan = plan_for(providers, clock, WEB)
    executor(providers, journal, clock, tmp_path, plan).apply(plan)
    assert kept.name in names_on(cloud, WEB)
    assert [line for line in audit(tmp_path) if line[2] == kept.name] == []
    assert journal.deletions(WEB.account, WEB.server_id) == {}


def test_executor_writes_a_deletion_down_before_sending_it(
    cloud, providers, journal, clock, tmp_path
):
    spy = JournalSpy(providers["do-a"], tmp_path / "journal.json", clock)
    plan = plan_for(providers, clock, WEB)
    first, second = doomed(plan, WEB)
    executor({"do-a": spy}, journal, clock, tmp_path, plan).apply(plan)
    assert sorted(sent for sent, _ in spy.deletions_at_delete) == sorted([first.id, second.id])
    assert all(sent in seen for sent, seen in spy.deletions_at_delete)
    assert journal.deletions(WEB.account, WEB.server_id) == {}


# -- the three phases (issue 13) -------------------------------------------------------------


@BOTH
def test_a_snapshot_that_outlasts_the_creation_timeout_fails_its_target_and_stays_journalled(
    cloud, providers, journal, clock, tmp_path, provider
):
    target = TARGETS[provider]
    cloud.state.action_seconds = 2
    plan = plan_for(providers, clock, target)
    (outcome,) = (
        executor(
            providers, journal, clock, tmp_path, plan, timing=replace(TIMING, creation_timeout=0.3)
        )
        .apply(plan)
        .outcomes
    )
    name = f"{target.server_name}-20250101000000"
    assert outcome.error == (
        f"{provider} wait for snapshot failed (timed out after 0.3s): "
        f"snapshot {name} is still not finished"
    )
    assert outcome.deleted == () and name in journal.pending(
        target.account, target.server_id
    )  # a later run adopts it


@BOTH
def test_a_server_already_making_a_snapshot_gets_no_second_one(
    cloud, providers, journal, clock, tmp_path, provider, do, hz
):
    target = TARGETS[provider]
    cloud.state.action_seconds = 2
    if provider == DIGITALOCEAN:
        do.droplet_actions.post(droplet_id=101, body={"type": "snapshot", "name": "manual"})
    else:
        from hcloud.servers import Server

        hz.servers.create_image(Server(id=301), description="manual", type="snapshot")
    plan = plan_for(providers, clock, target)
    cloud.clear_requests()
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert (
        not outcome.ok
        and "already has a snapshot in progress; not starting a second one" in outcome.error
    )
    assert (
        outcome.deleted == ()
        and [r for r in cloud.requests(provider) if r["method"] != "GET"] == []
    )


def test_targets_of_one_account_are_polled_together(sandbox, providers, journal, clock, tmp_path):
    """Three snapshots on one account: every poll round is one request for all three."""
    targets = [
        replace(APP, name=f"app{n}", server_id=str(301 + n), server_name=f"s{n}") for n in range(3)
    ]
    sandbox.state.action_seconds = 0.5
    plan = plan_for(providers, clock, *targets)
    sandbox.clear_requests()
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    assert report.exit_code == 0 and all(o.created for o in report.outcomes)
    log = sandbox.requests(HETZNER)
    polled = [
        r["query"]["id"] if isinstance(r["query"]["id"], list) else [r["query"]["id"]]
        for r in log
        if r["path"] == "/v1/actions"
    ]
    assert max(len(ids) for ids in polled) == 3
    assert not [
        r
        for r in log
        if r["path"].startswith("/v1/actions/") or r["path"].startswith("/v1/images/")
    ]  # no per-snapshot reads


# -- consistency hooks (issue 15, item 3), with real subprocesses ------------------------------

RECORD = (
    'echo "$0 $SNAPSHOT_POLICY_TARGET $SNAPSHOT_POLICY_SERVER_ID $SNAPSHOT_POLICY_SNAPSHOT '
    '$SNAPSHOT_POLICY_STATUS" >> "$HOOK_LOG"'
)


def hooked(
    target: Target, before: str | None = RECORD, after: str | None = RECORD, timeout: float = 10
) -> Target:
    """`target` with shell hooks that append a line per run to $HOOK_LOG ($0 names the hook)."""
    script = lambda body, name: ("sh", "-c", body, name) if body else None  # noqa: E731
    return replace(
        target,
        hooks=Hooks(
            before=script(before, "before"),
            after=script(after, "after"),
            timeout=timeout,
            env=("HOOK_LOG",),
        ),
    )


@pytest.fixture
def hook_log(tmp_path, monkeypatch):
    path = tmp_path / "hooks.log"
    monkeypatch.setenv("HOOK_LOG", str(path))
    return path


def ran(hook_log) -> list[str]:
    return (
        [line.rstrip() for line in hook_log.read_text().splitlines()] if hook_log.exists() else []
    )


@BOTH
def test_hooks_run_before_and_after_the_snapshot_with_its_names(
    cloud, providers, journal, clock, tmp_path, provider, hook_log
):
    target = hooked(TARGETS[provider])
    plan = plan_for(providers, clock, target)
    cloud.clear_requests()
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    name = f"{target.server_name}-20250101000000"
    assert outcome.ok and outcome.created.name == name and len(outcome.deleted) == 2
    assert ran(hook_log) == [
        f"before {target.name} {target.server_id} {name}",
        f"after {target.name} {target.server_id} {name} success",
    ]


@BOTH
@pytest.mark.parametrize(
    "before, timeout, problem",
    [
        ("exit 3", 10, "before hook failed (exit status 3)"),
        ("sleep 30", 0.5, "before hook timed out after 0.5s and was killed"),
    ],
    ids=["fails", "hangs"],
)
def test_a_before_hook_that_fails_or_hangs_means_no_snapshot_and_nothing_deleted(
    cloud, providers, journal, clock, tmp_path, provider, hook_log, before, timeout, problem
):
    target = hooked(TARGETS[provider], before=f"{RECORD}; {before}", timeout=timeout)
    plan = plan_for(providers, clock, target)
    cloud.clear_requests()
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    (outcome,) = report.outcomes
    assert (
        not outcome.ok
        and outcome.error == problem
        and outcome.created is None
        and outcome.deleted == ()
    )
    assert [
        r for r in cloud.requests(provider) if r["method"] != "GET"
    ] == []  # no start, no deletion
    assert [line.split()[0] for line in ran(hook_log)] == [
        "before",
        "after",
    ]  # the after hook still ran
    assert ran(hook_log)[1].endswith(" failure") and report.exit_code == 1
    assert (
        journal.pending(target.account, target.server_id) == {}
    )  # nothing started, nothing to adopt


@BOTH
def test_the_after_hook_runs_when_the_snapshot_fails(
    cloud, providers, journal, clock, tmp_path, provider, hook_log
):
    cloud.inject("fail_action", service=provider)
    target = hooked(TARGETS[provider])
    plan = plan_for(providers, clock, target)
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert not outcome.ok and outcome.deleted == ()
    assert [line.split()[0] for line in ran(hook_log)] == ["before", "after"] and ran(hook_log)[
        1
    ].endswith(" failure")


def test_a_failing_after_hook_fails_the_target_but_keeps_its_snapshot_and_deletions(
    cloud, providers, journal, clock, tmp_path, hook_log
):
    target = hooked(APP, before=None, after="exit 4")
    plan = plan_for(providers, clock, target)
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert not outcome.ok and outcome.error == "after hook failed (exit status 4)"
    assert outcome.created is not None and len(outcome.deleted) == 2


def test_hooks_do_not_run_when_no_snapshot_is_due(
    cloud, providers, journal, clock, tmp_path, hook_log
):
    target = replace(hooked(APP), schedule=Schedule(every=Duration(days=7)))
    plan = plan_for(providers, clock, target)
    assert plan.targets[0].create is None
    executor(providers, journal, clock, tmp_path, plan).apply(plan)
    assert ran(hook_log) == []


def test_a_hook_runs_without_a_shell_unless_asked(
    cloud, providers, journal, clock, tmp_path, hook_log
):
    """An argv list is not parsed by a shell: `$HOOK_LOG` and `;` reach the program as written."""
    target = replace(
        APP,
        hooks=Hooks(
            before=(
                sys.executable,
                "-c",
                (
                    "import sys, os; "
                    "open(os.environ['HOOK_LOG'], 'a').write(repr(sys.argv[1:]) + chr(10))"
                ),
                "$HOOK_LOG; rm -rf /",
            ),
            env=("HOOK_LOG",),
        ),
    )
    plan = plan_for(providers, clock, target)
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert outcome.ok and ran(hook_log) == ["['$HOOK_LOG; rm -rf /']"]
