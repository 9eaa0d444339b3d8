"""The vocabulary shared by every module: inert, immutable values and no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum

from snapshot_policy.core.duration import Duration

DIGITALOCEAN = "digitalocean"
HETZNER = "hetzner"
PROVIDERS = (DIGITALOCEAN, HETZNER)

DEFAULT_CREATION_TIMEOUT = timedelta(hours=1)
"""How long a snapshot may take to be made, unless `settings.snapshot_creation_timeout` says."""

Clock = Callable[[], datetime]
"""The current time, timezone-aware. Only the CLI reads the wall clock; everything below is
handed a Clock (or a `now` taken from one), so tests and the demo can pin it."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How many snapshots to keep, in restic `forget` terms (docs/promises.md §6). 0 turns a rule
    off."""

    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: Duration | None = None
    keep_within_hourly: Duration | None = None
    keep_within_daily: Duration | None = None
    keep_within_weekly: Duration | None = None
    keep_within_monthly: Duration | None = None
    keep_within_yearly: Duration | None = None
    keep_verified: int = 0
    """Keep the newest N snapshots that passed a restore drill, whatever the other rules say
    (issue 22). Not a period rule: it counts drilled snapshots, not periods."""

    COUNTED_RULES = (
        "keep_last",
        "keep_hourly",
        "keep_daily",
        "keep_weekly",
        "keep_monthly",
        "keep_yearly",
    )
    # restic's --keep-within and --keep-within-hourly … -yearly: bounded by a duration, not a count.
    DURATION_RULES = (
        "keep_within",
        "keep_within_hourly",
        "keep_within_daily",
        "keep_within_weekly",
        "keep_within_monthly",
        "keep_within_yearly",
    )

    def __post_init__(self) -> None:
        for rule in (*self.COUNTED_RULES, "keep_verified"):
            if getattr(self, rule) < 0:
                raise ValueError(f"{rule} must be 0 or more, not {getattr(self, rule)}")

    @property
    def has_rules(self) -> bool:
        return (
            any(getattr(self, r) for r in self.COUNTED_RULES)
            or any(getattr(self, r) is not None for r in self.DURATION_RULES)
            or self.keep_verified > 0
        )

    def describe(self) -> str:
        """Return the active rules as the operator would write them, e.g. `keep_daily 7`."""
        parts = [f"{r} {getattr(self, r)}" for r in self.COUNTED_RULES if getattr(self, r)]
        parts += [
            f"{r} {getattr(self, r)}" for r in self.DURATION_RULES if getattr(self, r) is not None
        ]
        parts += [f"keep_verified {self.keep_verified}"] if self.keep_verified else []
        return ", ".join(parts) or "no rules"


@dataclass(frozen=True)
class Schedule:
    """When a new snapshot is due: `every` interval, a `cron` expression, or (neither) every run."""

    every: Duration | None = None
    cron: str | None = None

    def describe(self) -> str:
        if self.cron:
            return f"cron '{self.cron}'"
        if self.every:
            return f"every {self.every}"
        return "every run"


@dataclass(frozen=True)
class Safety:
    """Limits that make apply refuse rather than act (docs/promises.md §5)."""

    max_deletions: int = 10


DEFAULT_NAME_PATTERN = "{server_name}-{timestamp}"


@dataclass(frozen=True)
class Account:
    """One cloud account (one API token). `endpoint` overrides the provider's API URL."""

    name: str
    provider: str
    token: str = field(repr=False)
    endpoint: str | None = None
    snapshot_limit: int | None = None
    """The most snapshots the operator expects the account to hold (`status` compares its
    count to it); neither cloud says its own limit. None: no limit set."""


@dataclass(frozen=True)
class Server:
    """A server as a provider reports it. DigitalOcean tags appear as labels with empty values."""

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    snapshot_ids: tuple[str, ...] | None = field(default=None, compare=False, hash=False)
    """The snapshots the server itself names (DigitalOcean's `snapshot_ids`); None where the
    API gives no such list (Hetzner). A second view of the snapshot listing."""
    region: str | None = field(default=None, compare=False, hash=False)
    """Where it runs (DigitalOcean region slug, Hetzner location name): a drill restores there
    when it can."""
    status: str | None = field(default=None, compare=False, hash=False)
    """The cloud's word for its power state ("active"/"off" on DigitalOcean, "running"/"off"
    on Hetzner): consistency: shutdown leaves a server that was off, off."""
    volume_ids: tuple[str, ...] = field(default=(), compare=False, hash=False)
    """DigitalOcean: the volumes attached to it (`volume_ids`)."""


@dataclass(frozen=True)
class Selector:
    """Which servers a target covers: by ids, by names, or by label selector (DigitalOcean: a
    tag)."""

    ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    label_selector: str | None = None

    def describe(self) -> str:
        if self.ids:
            return "ids " + ", ".join(self.ids)
        if self.names:
            return "names " + ", ".join(self.names)
        return f"label selector {self.label_selector!r}"


@dataclass(frozen=True)
class TelegramChannel:
    name: str
    bot_token: str = field(repr=False)
    chat_id: str
    message_success: str | None = None
    message_failure: str | None = None
    timeout: float = 10.0
    retries: int = 3
    base_delay: float = 2.0
    summary: bool = False
    style: str = "snapshot-policy"  # or "snapshots.py": that script's texts (notify.messages)
    script: str | None = None  # what {script} renders; None: the style's own


@dataclass(frozen=True)
class WebhookChannel:
    name: str
    url: str
    secret: str | None = field(default=None, repr=False)
    payload_success: dict | None = field(default=None, compare=False, hash=False)
    payload_failure: dict | None = field(default=None, compare=False, hash=False)
    timeout: float = 10.0
    retries: int = 3
    base_delay: float = 2.0
    headers: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    style: str = "snapshot-policy"  # or "snapshots.py": that script's texts (notify.messages)
    script: str | None = None  # what {script} renders; None: the style's own
    allow_plain_http: bool = False  # http to another host too (transport; issue 21)


@dataclass(frozen=True)
class AppriseChannel:
    """Messages through apprise (issue 21, item 12) to each of `urls`, ntfy, e-mail, Slack,
    Matrix, Discord, Gotify and the rest: the same texts as Telegram's, unescaped, the first
    line of a message of several lines as the title. `secrets` are the URLs and what apprise
    hides of them (tokens, passwords), masked wherever the tool writes."""

    name: str
    urls: tuple[str, ...] = field(repr=False)
    message_success: str | None = None
    message_failure: str | None = None
    timeout: float = 10.0
    retries: int = 3
    base_delay: float = 2.0
    summary: bool = False
    style: str = "snapshot-policy"
    script: str | None = None
    allow_plain_http: bool = False
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False, hash=False)


Channel = TelegramChannel | WebhookChannel | AppriseChannel


@dataclass(frozen=True)
class Hooks:
    """Commands around a target's snapshot (hooks.py): `before` and `after` are argv lists, or
    strings run by `sh -c` when `shell` is true; `timeout` is in seconds, for each."""

    before: tuple[str, ...] | str | None = None
    after: tuple[str, ...] | str | None = None
    timeout: float = 300.0
    shell: bool = False
    env: tuple[str, ...] = ()
    """Names of the run's environment variables a hook may see besides the minimal set."""


@dataclass(frozen=True)
class Drill:
    """A target's restore drill (issue 22): every `every`, its newest managed snapshot is
    restored to a throwaway server, which is probed with `probe` (an argv list, run here as
    hooks are, with `probe_timeout` seconds) and always deleted. `boot_timeout` bounds the
    wait until the server runs. `public_network` false asks for none where the cloud allows
    it; `networks` are Hetzner private networks to attach; `machine_type` fixes the size
    (DigitalOcean slug, Hetzner server type) instead of the smallest whose disk fits."""

    every: Duration
    probe: tuple[str, ...] | None = None
    probe_timeout: float = 300.0
    boot_timeout: float = 900.0
    public_network: bool = False
    networks: tuple[str, ...] = ()
    machine_type: str | None = None
    env: tuple[str, ...] = ()
    """Names of the run's environment variables the probe may see besides the minimal set."""


@dataclass(frozen=True)
class Consistency:
    """`consistency: shutdown` of a target: the server is shut down gracefully before its
    snapshot and powered on after it, always (docs/promises.md §5.17). `force` powers it off
    when the graceful shutdown does not finish within `timeout` seconds; without it the target
    fails without a snapshot."""

    mode: str = "shutdown"
    force: bool = False
    timeout: float = 300.0


@dataclass(frozen=True)
class Volume:
    """A DigitalOcean block storage volume attached to a droplet (`volumes: true`)."""

    id: str
    name: str
    region: str | None = None
    droplet_ids: tuple[str, ...] = ()
    size_gb: float | None = None


@dataclass(frozen=True)
class Pin:
    """`snapshot-policy pin`: retention keeps the snapshot until `until` (a day, inclusive).
    `protected_by_us` says the tool set Hetzner's delete protection, so only it lifts it."""

    until: date
    note: str = ""
    protected_by_us: bool = False


@dataclass(frozen=True)
class TargetSpec:
    """A target as configured, before its servers are looked up: the one shape both config
    formats load into.

    `server_name` fixes the name used in snapshot names instead of the server's own:
    snapshots.py named snapshots after the name in its config file.
    """

    name: str
    account: Account
    selector: Selector
    retention: RetentionPolicy
    schedule: Schedule = Schedule()
    safety: Safety = Safety()
    timezone: str = "UTC"
    name_pattern: str = DEFAULT_NAME_PATTERN
    adopt_legacy_names: bool = False
    notify: tuple[Channel, ...] = ()
    server_name: str | None = None
    source: str = ""
    hooks: Hooks | None = None
    owner: str = ""
    """The configuration this target belongs to (`settings.owner`): marked on every snapshot
    it makes, so another configuration covering the same server never deletes them."""
    drill: Drill | None = None
    copies: tuple[str, ...] = ()
    """DigitalOcean regions every snapshot is copied to (`copies: [{region: ams3}]`)."""
    consistency: Consistency | None = None
    server_overrides: str = "labels"
    """Whose per-server labels/tags may override the rules: "labels" (ours), "autobackup"
    (hcloud-snapshot-as-backup's AUTOBACKUP.KEEP-LAST too), or "off"."""
    volumes: bool = False
    """DigitalOcean: snapshot the droplet's attached volumes too, with the same rules."""


@dataclass(frozen=True)
class RunSettings:
    """How a run behaves, whichever format configured it."""

    lock_file: str
    log_file: str | None = None
    log_max_bytes: int = 5 * 1024 * 1024
    log_backup_count: int = 5
    log_level: str = "INFO"
    audit_log: str | None = None
    snapshot_creation_timeout: int = 3600
    request_timeout: float = 60.0
    delay_between_servers: float = 0.0
    parallel: int | None = None
    """At most this many snapshots in flight at once per account; None: as many as the
    account's request budget allows."""
    healthcheck_url: str | None = None
    telegram_api_url: str | None = None
    orphans_keep_last: int | None = None
    owner: str = ""
    """This configuration's identity on the snapshots it makes (TargetSpec.owner)."""
    max_deletions_per_run: int | None = None
    """A ceiling on the deletions of one run across every target; None: no ceiling."""
    uncovered_ignore: tuple[Selector, ...] = ()
    """Servers meant to have no target (`settings.uncovered.ignore`): `status` does not
    count them as uncovered."""
    drills_per_account: int = 2
    """At most this many drill servers exist at once per account."""
    soft_delete: Duration | None = None
    """`settings.soft_delete`: a snapshot retention lets go is marked pending deletion first
    and deleted only once this grace has passed; None: deleted at once."""


@dataclass(frozen=True)
class Target:
    """One server under one policy. A target selecting many servers yields one Target each."""

    name: str
    provider: str
    account: str
    server_id: str
    server_name: str
    retention: RetentionPolicy
    schedule: Schedule = Schedule()
    safety: Safety = Safety()
    timezone: str = "UTC"
    name_pattern: str = DEFAULT_NAME_PATTERN
    adopt_legacy_names: bool = False
    orphan: bool = False
    """The server is gone: its managed snapshots are only pruned (docs/promises.md §5), never
    added to."""
    notify: tuple[Channel, ...] = field(default=(), compare=False)
    hooks: Hooks | None = field(default=None, compare=False)
    owner: str = ""
    """The configuration this target belongs to (TargetSpec.owner)."""
    drill: Drill | None = field(default=None, compare=False)
    region: str | None = field(default=None, compare=False)
    """Where its server runs (Server.region): a drill restores there when it can."""
    copies: tuple[str, ...] = field(default=(), compare=False)
    consistency: Consistency | None = field(default=None, compare=False)
    server_status: str | None = field(default=None, compare=False)
    """Its server's power state when listed (Server.status): consistency: shutdown leaves a
    server that was off, off, and makes no journal entry for it."""
    rule_sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    """Where each retention key and the schedule came from when not the policy itself:
    {"keep_last": "label snapshot-policy/keep-last=14"} (core/overrides.py)."""
    server_overrides: str = "off"
    """TargetSpec.server_overrides: with "autobackup", hcloud-snapshot-as-backup's snapshots
    of the server are adopted (core/ownership.py); "off" for every target not built from a
    policy target (orphans, legacy layouts)."""
    volume_of: str | None = None
    """For a volume's target: the id of the droplet it is attached to; `server_id` and
    `server_name` are then the volume's own id and name."""


@dataclass(frozen=True)
class TargetFailure:
    """A target (or a config file standing for one) that could not be planned, and why.
    `server_name` is the server's name where the configuration gives it (a snapshots.py
    file), for the messages that name the server."""

    target: str
    reason: str
    account: str = ""
    notify: tuple[Channel, ...] = field(default=(), compare=False)
    server_name: str = ""
    provider: str = ""
    hooks: Hooks | None = field(default=None, compare=False)
    """Its hooks, where the configuration gives them: an `after` hook a killed run owed it
    runs even though this run could not read its server."""


@dataclass(frozen=True)
class CloudSnapshot:
    """A snapshot as listed by a provider, before anyone decided whose it is.

    `server_id` is the server it was made from (DigitalOcean `resource_id`, Hetzner
    `created_from.id`), or None when the API does not say. DigitalOcean tags are labels
    with empty values.
    """

    id: str
    name: str
    created: datetime
    server_id: str | None
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    protected: bool = False
    creating: bool = False
    size_gb: float | None = field(default=None, compare=False)
    """The size the provider bills, in GB (DigitalOcean `size_gigabytes`, Hetzner
    `image_size`); None when the API does not give it, as Hetzner while an image is made."""
    min_disk_gb: float | None = field(default=None, compare=False)
    """The disk a server restored from it needs (DigitalOcean `min_disk_size`, Hetzner
    `disk_size`); None when not given."""
    regions: tuple[str, ...] = field(default=(), compare=False)
    """Where it can be restored (DigitalOcean `regions`); () where any location will do
    (Hetzner snapshots are global)."""
    architecture: str | None = field(default=None, compare=False)
    pending_regions: tuple[str, ...] = field(default=(), compare=False)
    """DigitalOcean: regions a copy of it is being transferred to (its transfer actions)."""
    """x86 or arm (Hetzner `architecture`); None where the cloud has one (DigitalOcean)."""


@dataclass(frozen=True)
class StartedSnapshot:
    """A snapshot this run asked a cloud to make, and what it takes to follow it: the action
    to poll (None when only the recovery from a lost reply found it) and, on Hetzner, the
    image the start returned. `labels` is the marker it must carry once finished."""

    server_id: str
    name: str
    action_id: str | None
    image: CloudSnapshot | None = None
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class RateLimit:
    """How fast one account may be asked, as its provider documents and its last reply said:
    a steady `per_second`, bursts of up to `burst`, the `remaining` requests its rate-limit
    headers last reported (None before any reply), and at most `per_minute` in any minute
    where the provider has such a limit too."""

    per_second: float
    burst: float
    remaining: int | None = None
    per_minute: int | None = None


@dataclass(frozen=True)
class DrillMark:
    """The result of the last restore drill of a snapshot, as recorded on it: passed or
    failed, on a day (UTC)."""

    passed: bool
    on: date


@dataclass(frozen=True)
class Snapshot:
    """A snapshot as observed in a cloud, already classified for its server (docs/promises.md §5).

    `ownership` says why it is managed or not, in words fit for the plan output.
    """

    id: str
    name: str
    created: datetime
    server_id: str
    managed: bool
    ownership: str
    protected: bool = False
    creating: bool = False
    unmarked: bool = False
    """Ours, but still without our marker (a run was killed before it could tag it)."""
    size_gb: float | None = field(default=None, compare=False)
    """The billed size in GB, None when unknown (`CloudSnapshot.size_gb`). Not part of a
    snapshot's identity: a size that appears once an image is finished changes no decision."""
    note: str = field(default="", compare=False)
    """A hint for the operator that changes no decision, such as a managed snapshot whose
    name this tool would not have made (marked by hand?); empty when there is none."""
    drilled: DrillMark | None = field(default=None, compare=False)
    pin: Pin | None = field(default=None, compare=False)
    pending_delete: date | None = field(default=None, compare=False)
    """Soft deletion: marked to be deleted once this day has come (settings.soft_delete)."""
    """The last restore drill recorded on it (its label or tag); None: never drilled."""
    cloud: CloudSnapshot | None = field(default=None, compare=False, repr=False)
    """The listing it was classified from (regions, disk, architecture), where there is one."""


@dataclass(frozen=True)
class Price:
    """What one GB of snapshot storage costs for a month, in `currency` (an ISO 4217 code)."""

    per_gb_month: float
    currency: str
    source: str = field(default="", compare=False)
    """Where the price came from: "settings", the cloud's pricing API and the day it was read,
    or the shipped default with the page and date it was read from."""

    def monthly(self, size_gb: float) -> float:
        return size_gb * self.per_gb_month


class ActionKind(str, Enum):
    CREATE = "create"
    DELETE = "delete"
    KEEP = "keep"
    SKIP = "skip"
    MARK_PENDING = "mark-pending"
    """Soft deletion: mark the snapshot to be deleted after the grace; nothing is deleted."""
    UNMARK_PENDING = "unmark-pending"
    """A snapshot marked pending deletion that a rule keeps again: the mark is taken back."""
    UNPIN = "unpin"
    """A pin that has expired and whose Hetzner delete protection the tool set: apply takes
    the pin's marks off and lifts that protection; nothing is deleted in the same run."""


@dataclass(frozen=True)
class PlanAction:
    """One decision about one snapshot. `snapshot` is the planned one for a create."""

    kind: ActionKind
    snapshot: Snapshot
    reason: str
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetPlan:
    """Everything decided for one target, with the schedule's word on whether a snapshot is due."""

    target: Target
    actions: tuple[PlanAction, ...]
    schedule_note: str
    refusal: str | None = None
    problems: tuple[str, ...] = ()
    """What makes the target fail even though the plan can be carried out: a clock that
    disagrees with the cloud, a snapshot stuck being created."""
    withheld: str | None = None
    """Why this run makes no deletion for the target although its create may go on (two
    views of the cloud disagreed); its deletions are skips that say so."""

    def of_kind(self, kind: ActionKind) -> tuple[PlanAction, ...]:
        return tuple(a for a in self.actions if a.kind is kind)

    @property
    def create(self) -> PlanAction | None:
        creates = self.of_kind(ActionKind.CREATE)
        return creates[0] if creates else None

    @property
    def has_changes(self) -> bool:
        return any(a.kind not in (ActionKind.KEEP, ActionKind.SKIP) for a in self.actions)


@dataclass(frozen=True)
class Plan:
    """The whole run's decisions. `fingerprint` ties a reviewed plan to the snapshots it saw,
    `config_fingerprint` to the configuration that decided (never its secrets)."""

    made_at: datetime
    targets: tuple[TargetPlan, ...] = field(default_factory=tuple)
    fingerprint: str = ""
    config_fingerprint: str = ""
    drills: tuple[DrillPlan, ...] = ()
    """The restore drill of each target that has one: due or not, and what it would cost."""

    def count(self, kind: ActionKind) -> int:
        return sum(len(t.of_kind(kind)) for t in self.targets)

    @property
    def has_changes(self) -> bool:
        return any(t.has_changes for t in self.targets)


@dataclass(frozen=True)
class MachineType:
    """A size (DigitalOcean) or server type (Hetzner) a server can be restored to."""

    name: str
    disk_gb: float
    regions: tuple[str, ...]
    """Where it can be created now (DigitalOcean `size.regions`, Hetzner `prices[].location`)."""
    price_hourly: float
    currency: str
    architecture: str = "x86"
    available: bool = True
    """False for a DigitalOcean size marked unavailable or a deprecated Hetzner type."""


@dataclass(frozen=True)
class ServerRequest:
    """A server to make from a snapshot: a drill's throwaway one, or a restore's new one."""

    name: str
    image_id: str
    machine_type: str
    region: str
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    """Hetzner labels; DigitalOcean tags as labels with empty values (ownership)."""
    public_network: bool = True
    networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class MadeServer:
    """A server made from a snapshot, as the cloud lists it. `status` is one of "starting",
    "running", "off", "failed" (the cloud's own words mapped); addresses are None where it
    has none."""

    id: str
    name: str
    status: str
    region: str | None = None
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    private_ip: str | None = None
    public_ip: str | None = None
    """Its public IPv4, else its public IPv6 address."""
    image_id: str | None = None
    created: datetime | None = None


@dataclass(frozen=True)
class DrillPlan:
    """What a target's drill would do this run, and why (core/drills.py): restore `snapshot`
    to `machine_type` in `region`, at about `cost` in `currency`. `refusal` says why it
    cannot (no snapshot, no size that fits); `due` false says why not now in `note`."""

    target: Target
    due: bool
    note: str
    snapshot: Snapshot | None = None
    machine_type: MachineType | None = None
    region: str | None = None
    name: str = ""
    cost: float | None = None
    currency: str = ""
    refusal: str | None = None


@dataclass(frozen=True)
class DrillResult:
    """What one drill did. `stage` is how far it got ("create", "boot", "probe", "done");
    `restore_seconds` how long from the create until the server ran (None if it never did);
    `deleted` whether its server is confirmed gone (else the next run deletes it)."""

    target: Target
    snapshot: Snapshot
    passed: bool
    stage: str
    started: datetime
    finished: datetime
    server_id: str | None = None
    server_name: str = ""
    restore_seconds: float | None = None
    error: str | None = None
    deleted: bool = False
    machine_type: str = ""
    region: str = ""
    """What it was restored to, and where (the plan's choice)."""


@dataclass(frozen=True)
class OpenDrill:
    """A drill server the journal holds open (state/journal.py): requested at `when` for
    `target`'s server `source_server_id` from `snapshot_id`, named `name`; `server_id` once
    the create answered (None: requested, reply not seen); `deleting` once its DELETE was
    about to be sent (a run killed after it must still have the deletion audited). Open until
    its deletion is confirmed, however long that takes (docs/promises.md §5, invariant 14)."""

    account: str
    target: str
    source_server_id: str
    name: str
    snapshot_id: str
    when: datetime
    server_id: str | None = None
    deleting: bool = False


EXIT_OK, EXIT_ALL_FAILED, EXIT_SOME_FAILED = 0, 1, 2


@dataclass(frozen=True)
class Outcome:
    """What happened to one target. `remaining` counts its managed snapshots afterwards."""

    plan: TargetPlan
    ok: bool
    created: Snapshot | None = None
    deleted: tuple[Snapshot, ...] = ()
    remaining: int = 0
    error: str | None = None
    partial: bool = False
    """It did what it could, but its deletions were withheld (TargetPlan.withheld)."""
    downtime_seconds: float | None = None
    """consistency: shutdown — from the shutdown request until the server ran again."""
    copied_to: tuple[str, ...] = ()
    """Regions this run copied the new snapshot to (Target.copies)."""
    relabelled: tuple[PlanAction, ...] = ()
    """Its MARK_PENDING, UNMARK_PENDING and UNPIN actions this run carried out (§5.16)."""


@dataclass(frozen=True)
class Delivery:
    """One message or payload. `target` is None for a run summary; `attempts` counts requests
    (a plain-text resend included; 0 when it failed before anything was sent)."""

    channel: str
    kind: str  # "telegram", "webhook" or "apprise"
    target: str | None
    ok: bool
    attempts: int
    error: str | None


@dataclass(frozen=True)
class RunReport:
    started: datetime
    finished: datetime
    outcomes: tuple[Outcome, ...]
    failures: tuple[TargetFailure, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    """Notifications sent (or not) about this run; they never change its exit code."""
    unwritten: tuple[str, ...] = ()
    """The tool's own files it could not write after acting (run state, report, metrics):
    the changes stand, but the run fails so that someone looks."""
    drills: tuple[DrillResult, ...] = ()
    """Restore drills of this run: a failed one, or a drill server left behind, makes the
    run's exit code 2 at least (someone must look), never changing what snapshots did."""

    @property
    def exit_code(self) -> int:
        """0 every target succeeded; 1 all failed (or nothing ran); 2 some failed, or some
        only had their deletions withheld (docs/promises.md §3)."""
        succeeded = sum(o.ok for o in self.outcomes)
        partial = sum(o.partial and not o.ok for o in self.outcomes)
        failed = len(self.outcomes) - succeeded - partial + len(self.failures)
        drills_failed = any(not (d.passed and d.deleted) for d in self.drills)
        if not failed and not partial:
            return EXIT_SOME_FAILED if self.unwritten or drills_failed else EXIT_OK
        return EXIT_ALL_FAILED if not succeeded and not partial else EXIT_SOME_FAILED


# Error codes of our own for failures that are certain: repeating the call cannot help.
DEFINITE_FAILURES = ("action_failed", "snapshot_in_progress")
# The operation name of the one request that starts a snapshot, in every adapter.
START_SNAPSHOT = "start snapshot"


class ProviderError(Exception):
    """A cloud API call that failed, whatever the SDK: the one error type leaving providers/.

    `status` is the HTTP status, or None when no response came (timeout, dropped
    connection). `code` is the API's own error name where it has one (Hetzner's `locked`).
    `retry_after` is the wait the API asked for, in seconds, when it said. `request_id` is
    the cloud's name for the request (Hetzner's correlation id, DigitalOcean's request id),
    when its reply gave one: the message ends with it, so a support ticket can name the request.
    `situation` says in the message what came back in place of "HTTP nnn" or "no response":
    "" where the cloud answered and the message says how (an action that ended in error, a
    listing without the snapshot), so "no response" is said only when nothing answered.
    """

    def __init__(
        self,
        provider: str,
        operation: str,
        status: int | None,
        message: str,
        retry_after: float | None = None,
        code: str | None = None,
        request_id: str | None = None,
        situation: str | None = None,
    ):
        self.provider = provider
        self.operation = operation
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.code = code
        self.request_id = request_id
        if situation is None:
            situation = f"HTTP {status}" if status is not None else "no response"
        where = f" ({situation})" if situation else ""
        super().__init__(f"{provider} {operation} failed{where}: {message}{self._request_named}")

    @property
    def _request_named(self) -> str:
        """The end of the message naming the request, "" when the cloud named none."""
        return "" if self.request_id is None else f" (request id {self.request_id})"

    @property
    def transient(self) -> bool:
        """True when the same call may succeed later: rate limits, server errors, lost responses."""
        if self.code in DEFINITE_FAILURES:
            return False
        return self.status is None or self.status in (408, 409, 429, 500, 502, 503, 504)

    @property
    def refused(self) -> bool:
        """True when it is certain the call had no effect: the API refused it in its own words
        (any 4xx, a rate limit included) or the action was seen failing. A server error or a
        lost reply is not certain: the cloud may have acted."""
        return self.code in DEFINITE_FAILURES or (
            self.status is not None and 400 <= self.status < 500
        )

    @property
    def no_snapshot(self) -> bool:
        """True when it is certain that a create made no snapshot: its start request was
        refused, or its action was seen failing or never began. A failure after the start
        (waiting, tagging) leaves a snapshot that may exist."""
        return self.code in DEFINITE_FAILURES or (self.operation == START_SNAPSHOT and self.refused)
