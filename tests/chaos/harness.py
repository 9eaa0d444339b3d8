"""Runs of apply against the sandbox with injected faults, and the docs/promises.md §5 checks
after each.

A `World` is one sandbox cloud plus one policy, driven through the library as `run.apply`
drives it (observe → build_plan as `run.decide` → Executor → run state → notifications), but
with the seams the CLI does not expose: a simulated clock shared by the sandbox and the
planner, and a RetryPolicy whose sleeps are recorded and cut short, so retries with
Retry-After and backoff cost milliseconds. Journal, run state and audit log persist between
runs in the world's folder, as they do beside the lock file in production (same expiry as
`RunContext.journal`). Two worlds may share one sandbox (`shared`): two configurations over the
same servers.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from snapshot_policy import config
from snapshot_policy.core.model import ActionKind, CloudSnapshot, Delivery, Plan, RunReport
from snapshot_policy.core.ownership import has_marker
from snapshot_policy.edges import providers
from snapshot_policy.edges.notify import deliver
from snapshot_policy.edges.providers.retry import RetryPolicy, Timing
from snapshot_policy.engine import run as runs
from snapshot_policy.engine.drill import Drills
from snapshot_policy.engine.execute import Executor, Stop
from snapshot_policy.engine.observe import Observation
from snapshot_policy.engine.run import _remember, decide, routes
from snapshot_policy.sandbox import Sandbox
from snapshot_policy.state.audit import AuditLog
from snapshot_policy.state.journal import Journal
from snapshot_policy.state.runstate import RunState

DO_TOKEN = "dop_v1_chaos0000000000000000000000000000000000000000000000000000000001"
HZ_TOKEN = "hzchaos0000000000000000000000000000000000000000000000000000000002"
BOT_TOKEN = "5550001111:AAchaos-bot-token-0000000000000003"
HOOK_SECRET = "chaos-webhook-secret-0000000004"
ENV = {
    "CHAOS_DO_TOKEN": DO_TOKEN,
    "CHAOS_HZ_TOKEN": HZ_TOKEN,
    "CHAOS_BOT_TOKEN": BOT_TOKEN,
    "CHAOS_HOOK_SECRET": HOOK_SECRET,
}
REQUEST_TIMEOUT = 0.25
TIMING = Timing(request_timeout=REQUEST_TIMEOUT, creation_timeout=20, poll_interval=0.05)
# As RunContext.journal (the in-flight window), with the default snapshot_creation_timeout of
# 3600 s, in simulated time.
JOURNAL_EXPIRY = timedelta(seconds=3600 + 600)

# Where a fault lands: (service or None for both clouds, method, path regex).
ENDPOINTS: dict[str, tuple[str | None, str | None, str | None]] = {
    "list": (None, "GET", r"^/v2/(droplets|snapshots)$|^/v1/(servers|images)$"),
    "create": (None, "POST", r"^/v2/droplets/\d+/actions$|/actions/create_image$"),
    "poll": (None, "GET", r"^/v2/actions(/\d+)?$|^/v1/actions(/\d+)?$|^/v1/images/\d+$"),
    "delete": (None, "DELETE", None),
    "tag": ("digitalocean", None, r"^/v2/tags"),
    "telegram": ("telegram", "POST", r"sendMessage"),
    "webhook": ("webhook", "POST", None),
}


class Sleeps(list):
    """The RetryPolicy's and notifiers' sleep: records each wait, really waits at most 5 ms."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, 0.005))


@dataclass
class RunResult:
    plan: Plan
    observation: Observation
    report: RunReport
    deliveries: list[Delivery]
    before: dict[int, dict]
    after: dict[int, dict]
    requests: list[dict]
    audit: list[dict]

    @property
    def deleted(self) -> dict[int, dict]:
        return {i: s for i, s in self.before.items() if i not in self.after}

    @property
    def appeared(self) -> dict[int, dict]:
        return {i: s for i, s in self.after.items() if i not in self.before}


@dataclass
class World:
    """A sandbox, a policy and a simulated clock; `run()` is one apply at `now`.

    In `policy`, @DO@, @HZ@, @HOOK@ and @FOLDER@ stand for the sandbox's DigitalOcean and
    Hetzner endpoints, its webhook URL and the world's folder.
    """

    folder: Path
    state: dict
    policy: str
    now: datetime
    action_seconds: float = 0.02
    parallel: int = 4
    sleeps: Sleeps = field(default_factory=Sleeps)
    unmanaged: set[int] = field(default_factory=set)
    journal_expiry: timedelta = JOURNAL_EXPIRY
    shared: Sandbox | None = None
    """Another world's sandbox, to run a second configuration on (`state` is then unused);
    its clock stays that world's."""
    timing: Timing = TIMING
    """The clients' timeouts and the executor's waits (real seconds)."""
    drills: bool = False
    """Run restore drills as `run.apply` does: leftovers of earlier runs deleted first, the
    due drills after the snapshots (off by default: every run would list drill servers)."""

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sandbox = (
            self.shared
            or Sandbox(
                self.state, action_seconds=self.action_seconds, clock=lambda: self.now
            ).start()
        )
        self.unmanaged |= {s["id"] for s in self.snapshots().values() if not self.marked(s)}
        path = self.folder / "policy.yaml"
        text = self.policy
        for placeholder, value in (
            ("@DO@", self.sandbox.digitalocean_endpoint),
            ("@HZ@", self.sandbox.hetzner_endpoint),
            ("@HOOK@", self.sandbox.webhook_url("chaos")),
            ("@FOLDER@", str(self.folder)),
        ):
            text = text.replace(placeholder, value)
        path.write_text(text)
        self.loaded = config.load(policy=path, env=ENV)
        assert not self.loaded.errors, [str(p) for p in self.loaded.errors]

    def close(self) -> None:
        if self.shared is None:
            self.sandbox.stop()

    @property
    def journal_file(self) -> Path:
        return self.folder / "run.journal.json"

    @property
    def state_file(self) -> Path:
        return self.folder / "run.state.json"

    @property
    def audit_file(self) -> Path:
        return self.folder / "audit.jsonl"

    # -- the cloud, as plain dicts by snapshot id ------------------------------------------

    def snapshots(self) -> dict[int, dict]:
        return {s["id"]: s for s in self.sandbox.dump_state()["snapshots"]}

    def marked(self, snapshot: dict) -> bool:
        provider = "digitalocean" if "tags" in snapshot else "hetzner"
        labels = (
            {t: "" for t in snapshot.get("tags") or []}
            if provider == "digitalocean"
            else snapshot.get("labels") or {}
        )
        return has_marker(
            provider, CloudSnapshot(str(snapshot["id"]), snapshot["name"], self.now, None, labels)
        )

    def protected(self) -> set[int]:
        return {i for i, s in self.snapshots().items() if s.get("protected")}

    def inject(self, kind: str, endpoint: str, service: str | None = None, **options) -> None:
        default_service, method, path = ENDPOINTS[endpoint]
        self.sandbox.inject(
            kind, service=service or default_service, method=method, path=path, **options
        )

    def settle(self, extra: float = 0.0) -> None:
        """Wait until no snapshot action runs and no delayed request is still on its way."""
        time.sleep(extra)
        deadline = time.monotonic() + 10
        while any(self.sandbox.state.running_action(s) for s in list(self.sandbox.state.servers)):
            assert time.monotonic() < deadline, "a snapshot action never finished"
            time.sleep(0.01)

    # -- one run ---------------------------------------------------------------------------

    def connect(self, account):
        return providers.connect(
            account, self.timing, RetryPolicy(sleep=self.sleeps, jitter=lambda: 0.5)
        )

    def decide(
        self, journal: Journal | None = None, state: RunState | None = None
    ) -> tuple[Plan, Observation]:
        """Read the clouds and plan at `now`, as `run.decide` does, with this world's
        connections."""
        journal = journal or Journal(self.journal_file, self.journal_expiry, now=self.now)
        state = state or RunState(self.state_file, self.now)
        plan, _, observation = decide(self.loaded, True, self.now, journal, state, self.connect)
        return plan, observation

    def plan(self) -> Plan:
        return self.decide()[0]

    def run(self, settle: float = 0.0, stop: Stop | None = None) -> RunResult:
        """One apply at `self.now`, then the run state and notifications; then wait for
        stragglers (`settle` s). `stop`, once set, stops the run as a signal does (execute.py)."""
        before = self.snapshots()
        self.sandbox.clear_requests()
        journal = Journal(self.journal_file, self.journal_expiry, now=self.now)
        state = RunState(self.state_file, self.now)
        plan, observation = self.decide(journal, state)
        seen = len(self.audit_file.read_text().splitlines()) if self.audit_file.exists() else 0
        audit = AuditLog(self.audit_file, plan.fingerprint)
        stop = stop or Stop()
        drilling = (
            self._drilling(observation.providers, journal, audit, state, stop)
            if self.drills
            else None
        )
        failures = list(self.loaded.failed) + observation.failures
        if drilling is not None:  # before anything else, as run.apply does
            left = drilling.clear_leftovers(observation.providers)
            failures += runs._leftover_failures(left, self.loaded)
        executor = Executor(
            observation.providers,
            journal,
            audit,
            parallel=self.parallel,
            now=lambda: self.now,
            timing=self.timing,
            stop=stop,
            soft_delete=self.loaded.settings.soft_delete,
        )
        report = executor.apply(plan, failures)
        if drilling is not None:
            results = drilling.run(runs._newest(plan.drills, report))
            report = replace(report, drills=tuple(results))
        _remember(state, report, observation, self.now)
        deliveries = deliver(
            routes(report, "chaos-host", self.loaded.secrets),
            self.sandbox.telegram_base_url,
            lambda: self.now,
            self.loaded.secrets,
            sleep=self.sleeps,
        )
        self.settle(settle)
        audit = (
            [json.loads(line) for line in self.audit_file.read_text().splitlines()[seen:]]
            if self.audit_file.exists()
            else []
        )
        return RunResult(
            plan,
            observation,
            report,
            deliveries,
            before,
            self.snapshots(),
            self.sandbox.requests(),
            audit,
        )

    def drill(self, stop: Stop | None = None) -> tuple[Plan, RunReport]:
        """One `drill` command at `self.now`, as `run.drill` carries it out (every configured
        drill due now), with this world's connections."""
        context = _Context(
            self.loaded, TIMING, self.journal_file, self.state_file, self.audit_file,
            self.sandbox.telegram_base_url, self.connect,
        )  # fmt: skip
        self.sandbox.clear_requests()
        plan, _, report = runs.drill(context, lambda: self.now, stop=stop or Stop())
        self.settle()
        return plan, report

    def _drilling(self, providers_, journal, audit, state, stop: Stop) -> Drills:
        settings = self.loaded.settings
        return Drills(
            providers_,
            journal,
            audit,
            lambda: self.now,
            settings.owner,
            per_account=settings.drills_per_account,
            poll_interval=TIMING.poll_interval,
            state=state,
            stop=stop,
        )

    def converge(self, runs: int = 4) -> list[RunResult]:
        """Rerun, fault-free, until the plan has nothing left to do. A start the faulty run
        could not confirm counts as still running until the journal's in-flight window has
        passed (nothing proves it never began), so the reruns come after that, as the next
        cron runs would."""
        self.sandbox.clear_faults()
        self.now += self.journal_expiry + timedelta(minutes=1)
        results = []
        for _ in range(runs):
            self.settle()
            results.append(self.run())
            if not self.plan().has_changes:
                return results
        raise AssertionError(
            f"no convergence after {runs} fault-free runs: {describe(self.plan())}"
        )

    def end_state(self) -> list[tuple]:
        """(server, name, carries our marker) for every snapshot: ids differ between worlds,
        and one made by a run reads NEW, since its name says when it was made."""
        seeded = {s["name"] for s in self.state["snapshots"]}
        return sorted(
            (s.get("server_id"), s["name"] if s["name"] in seeded else "NEW", self.marked(s))
            for s in self.snapshots().values()
        )


@dataclass(frozen=True)
class _Context(runs.RunContext):
    """A RunContext whose connections are a world's (fast retries, recorded sleeps)."""

    connector: object = None

    def connect(self, account):
        return self.connector(account)


def describe(plan: Plan) -> str:
    return "; ".join(
        f"{p.target.name}/{p.target.server_id}: "
        + ", ".join(
            f"{a.kind.value} {a.snapshot.name}"
            for a in p.actions
            if a.kind in (ActionKind.CREATE, ActionKind.DELETE)
        )
        for p in plan.targets
        if p.has_changes
    )


# -- the docs/promises.md §5 checks that hold after every run, faults or not ----------------------


def check_run(world: World, result: RunResult, protected: set[int]) -> None:
    """Invariants 1, 2, 4 and 5 for one run (6 is checked over runs by `Creations`)."""
    gone = result.deleted
    lost_unmanaged = sorted(set(gone) & world.unmanaged)
    assert not lost_unmanaged, (
        f"unmanaged snapshots deleted: {[gone[i]['name'] for i in lost_unmanaged]}"
    )
    lost_protected = sorted(set(gone) & protected)
    assert not lost_protected, (
        f"protected snapshots deleted: {[gone[i]['name'] for i in lost_protected]}"
    )

    by_server: dict[str, list[str]] = defaultdict(list)
    for snapshot in gone.values():
        by_server[str(snapshot["server_id"])].append(snapshot["name"])
    for target_plan in result.plan.targets:
        target = target_plan.target
        deleted = by_server.get(target.server_id, [])
        assert len(deleted) <= target.safety.max_deletions, (
            f"{target.name}/{target.server_id}: {len(deleted)} deletions > max_deletions"
        )
    for outcome in result.report.outcomes:
        target = outcome.plan.target
        if outcome.plan.create is not None and outcome.created is None:
            deleted = by_server.get(target.server_id, [])
            assert not deleted, (
                f"{target.name}/{target.server_id}: create failed ({outcome.error}) "
                f"but {deleted} were deleted"
            )
            assert not outcome.deleted
    for failure in result.report.failures:
        # A target whose account could not be read was never planned: nothing deleted for it.
        assert not [
            e for e in result.audit if e["event"] == "deleted" and e["target"] == failure.target
        ]


def check_retained(world: World) -> None:
    """Invariant 3, after a fault-free run: a fresh plan deletes nothing and creates nothing,
    unless a max_deletions refusal holds the target (then it deletes nothing, by design)."""
    plan = world.plan()
    for target_plan in plan.targets:
        if target_plan.refusal:
            continue
        assert not target_plan.has_changes, (
            f"not the retained set after a fault-free run: {describe(plan)}"
        )
