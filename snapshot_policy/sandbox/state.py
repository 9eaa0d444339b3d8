"""The fake cloud's memory: accounts, servers, snapshots, actions and DigitalOcean tags.

Plain data plus the operations both provider front-ends need; no HTTP here. Two clocks are
injected: `clock` (an aware UTC datetime, used for every timestamp a client can see, so tests
can simulate days without sleeping) and `monotonic` (seconds, used only to decide when an
action has run for `action_seconds`). Actions complete lazily: every read first calls
`advance()`, which finishes the actions whose time is up.

One `Snapshot` type serves both clouds: a DigitalOcean snapshot image (name, tags) and a
Hetzner image (description, labels, protection, status). A DigitalOcean snapshot exists only
once its action completed; a Hetzner image exists from `create_image` on with status
`creating`. When a Hetzner create_image action fails, its image is removed (it never became
usable), which is what a client sees on the real API: the image id stops resolving.

The JSON form (`to_dict`/`from_dict`, also the `--state FILE` format) is documented in the
package docstring.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from .catalogue import DEFAULT_MACHINE_TYPE, architecture_of, disk_of
from .ratelimit import SlidingWindow, TokenBucket

T = TypeVar("T")
PROVIDERS = ("digitalocean", "hetzner")
DEFAULT_RATE_LIMIT = {"digitalocean": 5000, "hetzner": 3600}
DEFAULT_REGION = {"digitalocean": "nyc3", "hetzner": "fsn1"}
DEFAULT_SIZE_GIGABYTES = 2.5
# What a Hetzner account's `GET /v1/pricing` says unless its `pricing` says otherwise.
PRICING = {"currency": "EUR", "vat_rate": "19.00", "image": "0.0143"}
SERVER_STATUSES = ("starting", "running", "off", "stopping")
"""Provider-neutral: DigitalOcean new/active/off, Hetzner initializing/running/off."""
BOOT_COMMANDS = {"digitalocean": "create", "hetzner": "create_server"}
START_COMMAND = "start_server"
"""Hetzner's next action after create_server when `start_after_create` (its default)."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: str | datetime) -> datetime:
    """Accept an ISO 8601 string (a trailing Z too) or an aware datetime; return aware UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no timezone")
    return moment.astimezone(timezone.utc)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, as both clouds print it."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Account:
    name: str
    provider: str
    tokens: list[str]
    rate_limit: int | None = None
    burst_limit: int | None = None
    """DigitalOcean's requests per minute on top of the hourly budget; None: no such limit."""
    tags: dict[str, str] = field(default_factory=dict)
    """DigitalOcean tag registry: lower-cased name -> canonical spelling (first one wins)."""
    snapshot_limit: int | None = None
    """The most snapshots the account may hold; one more is refused (Hetzner 403
    `resource_limit_exceeded`, DigitalOcean 422). None: no limit."""
    boot_seconds: float | None = None
    """How long a new server takes to boot here; None: the state's `boot_seconds`."""
    server_limit: int | None = None
    """The most servers the account may have (DigitalOcean's droplet limit, Hetzner's
    project limit); one more is refused. None: no limit."""
    pricing: dict[str, str] = field(default_factory=dict)
    """Hetzner `GET /v1/pricing`: `currency`, `vat_rate` and `image` (the net price of a GB
    of images a month, a decimal string); each left out takes PRICING's."""


@dataclass
class Server:
    id: int
    account: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    region: str = ""
    created: datetime = field(default_factory=utc_now)
    ipv6: str | None = None
    """Hetzner: the IPv6 `ip` of its public net, as the API gives it (e.g. 2001:db8::/64)."""
    snapshot_size_gigabytes: float = DEFAULT_SIZE_GIGABYTES
    """The billed size of a snapshot made of it."""
    machine_type: str = ""
    """DigitalOcean size slug or Hetzner server type name (catalogue.py); its disk and
    architecture pass to the snapshots made of it."""
    status: str = "running"
    """One of SERVER_STATUSES."""
    image_id: int | None = None
    """The snapshot it was made from; None: a system image (seeded servers)."""
    public_ipv4: bool = True
    networks: list[int] = field(default_factory=list)
    """Hetzner networks it is attached to (a private address in each)."""
    protected: bool = False
    """Hetzner delete protection: DELETE answers 423 `protected`."""


@dataclass
class Snapshot:
    id: int
    account: str
    server_id: int | None
    server_name: str
    name: str
    created: datetime
    labels: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    protected: bool = False
    status: str = "available"
    type: str = "snapshot"
    size_gigabytes: float = DEFAULT_SIZE_GIGABYTES
    region: str = ""
    min_disk_gb: int = 25
    """The disk a server made of it needs: DigitalOcean `min_disk_size`, Hetzner `disk_size`
    (the disk of the server it was made of)."""
    architecture: str = "x86"
    """Hetzner: the architecture a server made of it must have."""
    copies: list[str] = field(default_factory=list)
    """DigitalOcean: the regions it was transferred to besides `region`."""

    edits = 0
    """Changes of any snapshot's `type` or `status` (not a field: a class-wide counter), which
    listings kept by `State.kept` filter on."""

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in _FILTERED_FIELDS:
            Snapshot.edits += 1


_FILTERED_FIELDS = frozenset({"type", "status"})


@dataclass
class Volume:
    """A DigitalOcean block storage volume: `id` a UUID string, attached to at most one
    droplet (`droplet_ids`, as the API says: "a volume can only be attached to a single
    Droplet")."""

    id: str
    account: str
    name: str
    region: str = ""
    size_gigabytes: int = 10
    droplet_ids: list[int] = field(default_factory=list)
    created: datetime = field(default_factory=utc_now)


@dataclass
class VolumeSnapshot:
    """A DigitalOcean volume snapshot: finished when the create answers; `id` a UUID string,
    `volume_id` its `resource_id` (the volume may be gone since)."""

    id: str
    account: str
    volume_id: str
    name: str
    created: datetime
    tags: list[str] = field(default_factory=list)
    region: str = ""
    size_gigabytes: float = 0.0
    min_disk_gb: int = 10


@dataclass
class Action:
    id: int
    account: str
    command: str
    server_id: int | None
    started: datetime
    deadline: float
    duration: float
    fails: bool = False
    status: str = "running"
    """Provider-neutral: running, success or error (DigitalOcean renders in-progress, ...)."""
    snapshot: Snapshot | None = None
    finished: datetime | None = None
    resources: list[dict] = field(default_factory=list)
    """What the action works on, as Hetzner lists it: [{"id": 42, "type": "server"}]."""
    boots: str | None = None
    powers: str | None = None
    """A power action (power_off, power_on): the status its server gets when it succeeds."""
    """A server's create action: the status its server gets when it succeeds ("running", or
    "off" when Hetzner is told not to start it); when it fails the server stays "off"."""
    transfer: tuple[Snapshot, str] | None = None
    """DigitalOcean's image transfer: the image and the region it is copied to."""

    def progress(self, monotonic_now: float) -> int:
        if self.status != "running":
            return 100
        if self.duration <= 0:
            return 99
        done = 1 - (self.deadline - monotonic_now) / self.duration
        return max(0, min(99, int(done * 100)))


class _Tracked(dict):
    """A dict that counts its changes (`generation`), so listings derived from it can be kept.

    Every way of adding, replacing or removing a key bumps the counter; changing a value's
    fields (a snapshot's labels) does not, and need not: the listings kept are lists of the
    objects themselves, ordered by id, which never changes, and filtered at most by type and
    status, whose changes `Snapshot.edits` counts.
    """

    generation = 0  # a class default, so unpickling (items before attributes) works too

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.generation += 1

    def __delitem__(self, key) -> None:
        super().__delitem__(key)
        self.generation += 1

    def __ior__(self, other):
        result = super().__ior__(other)
        self.generation += 1
        return result

    def pop(self, *args):
        self.generation += 1
        return super().pop(*args)

    def popitem(self):
        self.generation += 1
        return super().popitem()

    def setdefault(self, key, default=None):
        self.generation += 1
        return super().setdefault(key, default)

    def update(self, *args, **kwargs) -> None:
        super().update(*args, **kwargs)
        self.generation += 1

    def clear(self) -> None:
        super().clear()
        self.generation += 1


class State:
    """Everything the fake clouds hold. Callers serialise access with `state.lock`."""

    def __init__(
        self,
        *,
        action_seconds: float = 1.0,
        boot_seconds: float | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.action_seconds = action_seconds
        self.boot_seconds = boot_seconds
        """How long a new server boots (an account's own `boot_seconds` wins); None: as long
        as an action (`action_seconds`)."""
        self.clock = clock
        self.monotonic = monotonic
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.servers: dict[int, Server] = {}
        self.snapshots: dict[int, Snapshot] = _Tracked()
        self._kept: dict[tuple[str, object], tuple[object, int, int, object]] = {}
        """(account name, key) -> (snapshots dict, its generation, Snapshot.edits, value): see
        `kept`."""
        self.actions: dict[int, Action] = {}
        self.volumes: dict[str, Volume] = {}
        self.volume_snapshots: dict[str, VolumeSnapshot] = {}
        """DigitalOcean volume snapshots by id, in the order they were made."""
        self._running: dict[int, Action] = {}
        self._account_actions: dict[str, list[Action]] = {}
        """Account name -> its actions by id (ids only grow, so appending keeps the order)."""
        self.bots: dict[str, str] = {}
        """Telegram bot token -> bot username."""
        self._buckets: dict[str, TokenBucket] = {}
        self._windows: dict[str, SlidingWindow] = {}
        self._next_id = {"snapshot": 100_000_001, "action": 900_000_001, "server": 1_000_001}
        self.transfer_seconds: float | None = None
        """How long a DigitalOcean image transfer takes; None: as long as an action."""
        self.actions_oldest_first = False
        self.shutdown_seconds: float | None = None
        """How long a guest takes to shut down after a graceful shutdown request (its action
        itself is over at once, as the clouds say: it only sends the ACPI request); None: as
        long as an action (`action_seconds`)."""
        self._power_changes: dict[int, tuple[float, str]] = {}
        """Server id -> (monotonic deadline, status): a guest shutting down gets there."""
        """DigitalOcean's account action listing oldest first: its API description promises no
        order."""

    # -- seeding ---------------------------------------------------------------------------

    def add_account(
        self,
        name: str,
        provider: str,
        tokens: Iterable[str],
        *,
        rate_limit: int | None = None,
        burst_limit: int | None = None,
        snapshot_limit: int | None = None,
        boot_seconds: float | None = None,
        server_limit: int | None = None,
        pricing: dict[str, str] | None = None,
    ) -> Account:
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}, not {provider!r}")
        if burst_limit is not None and provider != "digitalocean":
            raise ValueError(
                "burst_limit is DigitalOcean's per-minute limit; Hetzner documents none"
            )
        with self.lock:
            for key, limit in (("snapshot_limit", snapshot_limit), ("server_limit", server_limit)):
                if limit is not None and (
                    isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
                ):
                    raise ValueError(f"{key} must be a whole number, 0 or more")
            if boot_seconds is not None and (
                isinstance(boot_seconds, bool)
                or not isinstance(boot_seconds, int | float)
                or boot_seconds < 0
            ):
                raise ValueError("boot_seconds must be a number of seconds, 0 or more")
            unknown = set(pricing or {}) - set(PRICING)
            if unknown or not all(isinstance(v, str) for v in (pricing or {}).values()):
                raise ValueError(f"pricing takes strings for {sorted(PRICING)}, not {pricing!r}")
            account = Account(
                name,
                provider,
                list(tokens),
                rate_limit,
                burst_limit,
                snapshot_limit=snapshot_limit,
                boot_seconds=boot_seconds,
                server_limit=server_limit,
                pricing=dict(pricing or {}),
            )
            self.accounts[name] = account
            return account

    def add_server(
        self,
        account: str,
        name: str,
        *,
        id: int | None = None,
        labels: dict[str, str] | None = None,
        tags: Iterable[str] = (),
        region: str | None = None,
        created: str | datetime | None = None,
        ipv6: str | None = None,
        snapshot_size_gigabytes: float = DEFAULT_SIZE_GIGABYTES,
        machine_type: str | None = None,
        status: str = "running",
        image_id: int | None = None,
        public_ipv4: bool = True,
        networks: Iterable[int] = (),
        protected: bool = False,
    ) -> Server:
        """Seed a server. One seeded `starting` boots from now, as a new one would."""
        if status not in SERVER_STATUSES:
            raise ValueError(f"server status must be one of {SERVER_STATUSES}, not {status!r}")
        with self.lock:
            owner = self.accounts[account]
            server = Server(
                id=self._take_id("server", id),
                account=account,
                name=name,
                labels=dict(labels or {}),
                tags=[self.register_tag(owner, tag) for tag in tags],
                region=region or DEFAULT_REGION[owner.provider],
                created=parse_time(created) if created else self.clock(),
                ipv6=ipv6,
                snapshot_size_gigabytes=snapshot_size_gigabytes,
                machine_type=machine_type or DEFAULT_MACHINE_TYPE[owner.provider],
                status=status,
                image_id=image_id,
                public_ipv4=public_ipv4,
                networks=[int(n) for n in networks],
                protected=protected,
            )
            self.servers[server.id] = server
            if status == "starting":
                self._boot(owner, server, self.boot_seconds_of(owner), fails=False, start=True)
            return server

    def add_snapshot(
        self,
        account: str,
        name: str,
        *,
        server_id: int | None = None,
        server_name: str | None = None,
        id: int | None = None,
        created: str | datetime | None = None,
        labels: dict[str, str] | None = None,
        tags: Iterable[str] = (),
        protected: bool = False,
        status: str = "available",
        type: str = "snapshot",
        size_gigabytes: float = DEFAULT_SIZE_GIGABYTES,
        min_disk_gb: int | None = None,
        architecture: str | None = None,
        copies: Iterable[str] = (),
    ) -> Snapshot:
        """Seed a finished snapshot (or a Hetzner image stuck in `creating`).

        `server_id` may name a server that no longer exists (an orphan); give `server_name` then.
        `min_disk_gb` and `architecture` default to its server's type's (else the default
        type's).
        """
        with self.lock:
            owner = self.accounts[account]
            server = self.servers.get(server_id) if server_id is not None else None
            snapshot = Snapshot(
                id=self._take_id("snapshot", id),
                account=account,
                server_id=server_id,
                server_name=server_name or (server.name if server else ""),
                name=name,
                created=parse_time(created) if created else self.clock(),
                labels=dict(labels or {}),
                tags=[self.register_tag(owner, tag) for tag in tags],
                protected=protected,
                status=status,
                type=type,
                size_gigabytes=size_gigabytes,
                region=server.region if server else DEFAULT_REGION[owner.provider],
                min_disk_gb=(min_disk_gb if min_disk_gb is not None else self._disk(owner, server)),
                architecture=architecture or self._architecture(owner, server),
                copies=list(copies),
            )
            self.snapshots[snapshot.id] = snapshot
            return snapshot

    @staticmethod
    def _disk(account: Account, server: Server | None) -> int:
        kind = server.machine_type if server else DEFAULT_MACHINE_TYPE[account.provider]
        return disk_of(account.provider, kind)

    @staticmethod
    def _architecture(account: Account, server: Server | None) -> str:
        kind = server.machine_type if server else DEFAULT_MACHINE_TYPE[account.provider]
        return architecture_of(account.provider, kind)

    def add_volume(
        self,
        account: str,
        name: str,
        *,
        id: str | None = None,
        region: str | None = None,
        size_gigabytes: int = 10,
        droplet_ids: Iterable[int] = (),
        created: str | datetime | None = None,
    ) -> Volume:
        """Seed a DigitalOcean volume, attached to the droplets `droplet_ids` (one at most)."""
        with self.lock:
            owner = self.accounts[account]
            if owner.provider != "digitalocean":
                raise ValueError("volumes are DigitalOcean's; Hetzner volumes have no snapshots")
            droplets = [int(d) for d in droplet_ids]
            if len(droplets) > 1:
                raise ValueError("a volume is attached to one droplet at most")
            attached = self.servers.get(droplets[0]) if droplets else None
            volume = Volume(
                id=id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"volume/{account}/{name}")),
                account=account,
                name=name,
                region=region or (attached.region if attached else DEFAULT_REGION[owner.provider]),
                size_gigabytes=size_gigabytes,
                droplet_ids=droplets,
                created=parse_time(created) if created else self.clock(),
            )
            self.volumes[volume.id] = volume
            return volume

    def add_volume_snapshot(
        self,
        account: str,
        volume_id: str,
        name: str,
        *,
        id: str | None = None,
        created: str | datetime | None = None,
        tags: Iterable[str] = (),
        size_gigabytes: float | None = None,
        region: str | None = None,
    ) -> VolumeSnapshot:
        """Seed (or make) a finished volume snapshot; `volume_id` may name a volume that is
        gone (an orphan)."""
        with self.lock:
            owner = self.accounts[account]
            volume = self.volumes.get(volume_id)
            snapshot = VolumeSnapshot(
                id=id
                or str(uuid.uuid5(uuid.NAMESPACE_URL, f"vs/{self._take_id('snapshot', None)}")),
                account=account,
                volume_id=volume_id,
                name=name,
                created=parse_time(created) if created else self.clock(),
                tags=[self.register_tag(owner, tag) for tag in tags],
                region=region or (volume.region if volume else DEFAULT_REGION[owner.provider]),
                size_gigabytes=(
                    size_gigabytes
                    if size_gigabytes is not None
                    else (volume.size_gigabytes / 4 if volume else DEFAULT_SIZE_GIGABYTES)
                ),
                min_disk_gb=volume.size_gigabytes if volume else 10,
            )
            self.volume_snapshots[snapshot.id] = snapshot
            return snapshot

    def volumes_of(self, account: Account) -> list[Volume]:
        return [v for v in self.volumes.values() if v.account == account.name]

    def volume_snapshots_of(self, account: Account) -> list[VolumeSnapshot]:
        return [s for s in self.volume_snapshots.values() if s.account == account.name]

    def volume_ids_of(self, server: Server) -> list[str]:
        """The volumes attached to a droplet (its `volume_ids`)."""
        return [v.id for v in self.volumes.values() if server.id in v.droplet_ids]

    def add_bot(self, token: str, username: str = "sandbox_bot") -> None:
        with self.lock:
            self.bots[token] = username

    def remove_server(self, server_id: int) -> None:
        """Forget a server but keep its snapshots: they become orphans."""
        with self.lock:
            del self.servers[server_id]

    def _take_id(self, kind: str, wanted: int | None) -> int:
        if wanted is None:
            wanted = self._next_id[kind]
        self._next_id[kind] = max(self._next_id[kind], wanted + 1)
        return wanted

    # -- lookups ---------------------------------------------------------------------------

    def account_for_token(self, provider: str, token: str) -> Account | None:
        for account in self.accounts.values():
            if account.provider == provider and token in account.tokens:
                return account
        return None

    def server(self, account: Account, server_id: int) -> Server | None:
        server = self.servers.get(server_id)
        return server if server and server.account == account.name else None

    def snapshot(self, account: Account, snapshot_id: int) -> Snapshot | None:
        self.advance()
        snapshot = self.snapshots.get(snapshot_id)
        return snapshot if snapshot and snapshot.account == account.name else None

    def action(self, account: Account, action_id: int) -> Action | None:
        self.advance()
        action = self.actions.get(action_id)
        return action if action and action.account == account.name else None

    def actions_of(self, account: Account) -> list[Action]:
        """The account's actions by id (a new list each call)."""
        self.advance()
        return list(self._account_actions.get(account.name, ()))

    def actions_by_ids(self, account: Account, action_ids: Iterable[int]) -> list[Action]:
        """The account's actions among `action_ids`, by id, each once; unknown ids are skipped.

        One lookup per id, so polling hundreds of ids costs the same with a million actions."""
        self.advance()
        found = {
            a.id: a
            for a in map(self.actions.get, set(action_ids))
            if a and a.account == account.name
        }
        return [found[i] for i in sorted(found)]

    def actions_of_server(self, account: Account, server_id: int) -> list[Action]:
        """The server's actions, newest first, as DigitalOcean lists a droplet's actions."""
        mine = [a for a in self.actions_of(account) if a.server_id == server_id]
        return mine[::-1]

    def servers_of(self, account: Account) -> list[Server]:
        self.advance()
        return sorted(
            (s for s in self.servers.values() if s.account == account.name), key=lambda s: s.id
        )

    def snapshots_of(self, account: Account) -> list[Snapshot]:
        """The account's snapshots by id (a new list each call).

        Paginated listings ask for this once per page, so the sorted list is kept per account
        (`kept`), not rebuilt for every page: at 40,000 images the sort dominated the fake's time.
        """
        ordered = self.kept(
            account,
            "snapshots",
            lambda: sorted(
                (s for s in self.snapshots.values() if s.account == account.name),
                key=lambda s: s.id,
            ),
        )
        return list(ordered)

    def kept(self, account: Account, key: object, build: Callable[[], T]) -> T:
        """Return `build()`, what a listing derives from the account's snapshots, kept per
        account and `key` until a snapshot is added or removed anywhere (the dict's
        generation) or any snapshot's `type` or `status` changes (`Snapshot.edits`).

        For listings served page by page: each page would otherwise sort or filter all of the
        account's snapshots again. The value is shared: callers must not change it. So `build`
        may depend on the snapshots' ids, server ids, types and statuses only (not on names,
        labels or tags, which change without notice).
        """
        self.advance()
        snapshots = self.snapshots
        generation = getattr(snapshots, "generation", None)
        if generation is None:  # someone replaced the dict with a plain one: no keeping
            return build()
        edits = Snapshot.edits  # read before building: a change while building discards it
        found = self._kept.get((account.name, key))
        if (
            found is not None
            and found[0] is snapshots
            and found[1] == generation
            and found[2] == edits
        ):
            return found[3]  # type: ignore[return-value]
        value = build()
        self._kept[(account.name, key)] = (snapshots, generation, edits, value)
        return value

    def running_action(self, server_id: int) -> Action | None:
        self.advance()
        for action in self._running.values():
            if action.server_id == server_id:
                return action
        return None

    def take_request(self, account: Account) -> int | None:
        """Charge one request to the account: None if it had budget, else the whole seconds until
        one request is free again. A refused request is charged to neither limit."""
        limit = account.rate_limit or DEFAULT_RATE_LIMIT[account.provider]
        bucket = self._buckets.get(account.name)
        if bucket is None or bucket.limit != limit:
            bucket = self._buckets[account.name] = TokenBucket(limit)
        window = None
        if account.burst_limit is not None:
            window = self._windows.get(account.name)
            if window is None or window.limit != account.burst_limit:
                window = self._windows[account.name] = SlidingWindow(account.burst_limit)
        if window is not None and window.full():
            return window.retry_after()
        if not bucket.take():
            return bucket.retry_after()
        if window is not None:
            window.take()
        return None

    def bucket(self, account: Account | None, provider: str) -> TokenBucket:
        """The account's budget; a full default one for unknown accounts (401 answers)."""
        if account is None:
            return TokenBucket(DEFAULT_RATE_LIMIT[provider])
        return self._buckets.get(account.name) or TokenBucket(
            account.rate_limit or DEFAULT_RATE_LIMIT[provider]
        )

    # -- changes ---------------------------------------------------------------------------

    def start_snapshot(
        self,
        account: Account,
        server: Server,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        type: str = "snapshot",
        fails: bool = False,
    ) -> Action:
        """Begin a snapshot action. Hetzner's image is visible at once (creating); DO's later."""
        now = self.clock()
        snapshot = Snapshot(
            id=self._take_id("snapshot", None),
            account=account.name,
            server_id=server.id,
            server_name=server.name,
            name=name,
            created=now,
            labels=dict(labels or {}),
            status="creating",
            type=type,
            size_gigabytes=server.snapshot_size_gigabytes,
            region=server.region,
            min_disk_gb=self._disk(account, server),
            architecture=self._architecture(account, server),
        )
        if account.provider == "hetzner":
            self.snapshots[snapshot.id] = snapshot
        command = "create_image" if account.provider == "hetzner" else "snapshot"
        action = self._new_action(account, command, server.id, snapshot=snapshot, fails=fails)
        action.resources = [
            {"id": server.id, "type": "server"},
            {"id": snapshot.id, "type": "image"},
        ]
        return action

    def start_action(self, account: Account, server: Server, command: str) -> Action:
        """Begin an action other than a snapshot on the server (a resize, a power off): it runs
        `action_seconds` and makes the server busy meanwhile."""
        action = self._new_action(account, command, server.id)
        action.resources = [{"id": server.id, "type": "server"}]
        return action

    def start_transfer(
        self, account: Account, snapshot: Snapshot, region: str, *, fails: bool = False
    ) -> Action:
        """Begin copying a DigitalOcean image to `region`: once the action ends (after
        `transfer_seconds`), the image is in that region too, unless it `fails`."""
        seconds = self.action_seconds if self.transfer_seconds is None else self.transfer_seconds
        action = self._new_action(account, "transfer", None, fails=fails, duration=seconds)
        action.transfer = (snapshot, region)
        action.resources = [{"id": snapshot.id, "type": "image"}]
        return action

    def power_action(
        self,
        account: Account,
        server: Server,
        kind: str,
        command: str,
        *,
        ignored: bool = False,
        fails: bool = False,
    ) -> Action:
        """A power action (`kind` shutdown, power_off or power_on; `command` the cloud's word).
        A shutdown only sends the guest its ACPI request: the action is over at once and the
        guest is `stopping`, then `off` after `shutdown_seconds` — unless it `ignored` it (it
        stays running; only a power off helps). power_off/power_on take `action_seconds`; a
        `fails` power on (a fault) ends in error and leaves the server off. Any power action
        cancels a shutdown still under way."""
        self._power_changes.pop(server.id, None)
        action = self._new_action(
            account,
            command,
            server.id,
            duration=0.0 if kind == "shutdown" else None,
            fails=fails and kind == "power_on",
        )
        action.resources = [{"id": server.id, "type": "server"}]
        if kind == "shutdown":
            if not ignored and server.status == "running":
                seconds = (
                    self.action_seconds if self.shutdown_seconds is None else self.shutdown_seconds
                )
                server.status = "stopping"
                self._power_changes[server.id] = (self.monotonic() + seconds, "off")
        else:
            action.powers = "off" if kind == "power_off" else "running"
        self.advance()
        return action

    def boot_seconds_of(self, account: Account) -> float:
        """How long a new server of the account boots: its own setting, else the state's,
        else as long as an action."""
        for seconds in (account.boot_seconds, self.boot_seconds):
            if seconds is not None:
                return seconds
        return self.action_seconds

    def create_server(
        self,
        account: Account,
        name: str,
        *,
        machine_type: str,
        region: str,
        image: Snapshot | None,
        labels: dict[str, str] | None = None,
        tags: Iterable[str] = (),
        public_ipv4: bool = True,
        ipv6: bool = False,
        networks: Iterable[int] = (),
        start: bool = True,
        fails: bool = False,
        seconds: float | None = None,
    ) -> tuple[Server, list[Action]]:
        """Make a server from `image` (None: a system image); it is `starting` until its create
        action ends after `seconds` (default: `boot_seconds_of`), then `running` (`off` if not
        started, or if the action failed: `fails`). Return it and its actions (Hetzner: the
        create_server action, then start_server when started)."""
        server = Server(
            id=self._take_id("server", None),
            account=account.name,
            name=name,
            labels=dict(labels or {}),
            tags=[self.register_tag(account, tag) for tag in tags],
            region=region,
            created=self.clock(),
            snapshot_size_gigabytes=image.size_gigabytes if image else DEFAULT_SIZE_GIGABYTES,
            machine_type=machine_type,
            status="starting",
            image_id=image.id if image else None,
            public_ipv4=public_ipv4,
            networks=list(networks),
        )
        if ipv6:
            block = f"2001:db8:{server.id % 65536:x}::"
            server.ipv6 = f"{block}/64" if account.provider == "hetzner" else f"{block}1"
        self.servers[server.id] = server
        duration = self.boot_seconds_of(account) if seconds is None else seconds
        return server, self._boot(account, server, duration, fails=fails, start=start)

    def _boot(
        self, account: Account, server: Server, seconds: float, *, fails: bool, start: bool
    ) -> list[Action]:
        command = BOOT_COMMANDS[account.provider]
        create = self._new_action(account, command, server.id, fails=fails, duration=seconds)
        create.boots = "running" if start else "off"
        actions = [create]
        if account.provider == "hetzner" and start:
            actions.append(
                self._new_action(account, START_COMMAND, server.id, fails=fails, duration=seconds)
            )
        for action in actions:
            action.resources = [{"id": server.id, "type": "server"}]
        return actions

    def server_limit_reached(self, account: Account) -> bool:
        limit = account.server_limit
        return limit is not None and len(self.servers_of(account)) >= limit

    def delete_server(self, server: Server) -> None:
        """Remove a server at once (its snapshots stay, as orphans); the front-ends say how
        the cloud answers."""
        del self.servers[server.id]

    def snapshot_count(self, account: Account) -> int:
        """The account's snapshots (not backups), those still being made too (a DigitalOcean
        snapshot is listed only once made): what a `snapshot_limit` counts."""
        listed = sum(1 for s in self.snapshots_of(account) if s.type == "snapshot")
        making = sum(
            1
            for a in self._running.values()
            if a.account == account.name
            and a.snapshot is not None
            and a.snapshot.type == "snapshot"
            and a.snapshot.id not in self.snapshots
        )
        return listed + making

    def instant_action(self, account: Account, command: str, resources: list[dict]) -> Action:
        """An action that is already finished, e.g. Hetzner's change_protection."""
        action = self._new_action(account, command, None, duration=0.0)
        action.resources = resources
        self.advance()
        return action

    def _new_action(
        self,
        account: Account,
        command: str,
        server_id: int | None,
        *,
        snapshot: Snapshot | None = None,
        fails: bool = False,
        duration: float | None = None,
    ) -> Action:
        seconds = self.action_seconds if duration is None else duration
        action = Action(
            id=self._take_id("action", None),
            account=account.name,
            command=command,
            server_id=server_id,
            started=self.clock(),
            deadline=self.monotonic() + seconds,
            duration=seconds,
            fails=fails,
            snapshot=snapshot,
        )
        self.actions[action.id] = action
        self._running[action.id] = action
        self._account_actions.setdefault(account.name, []).append(action)
        return action

    def advance(self) -> None:
        """Finish every running action whose time is up, and every shutdown of a guest."""
        now = self.monotonic()
        for server_id, (deadline, status) in list(self._power_changes.items()):
            if deadline <= now:
                del self._power_changes[server_id]
                if server_id in self.servers:
                    self.servers[server_id].status = status
        for action in [a for a in self._running.values() if a.deadline <= now]:
            del self._running[action.id]
            self._finish(action)

    def _finish(self, action: Action) -> None:
        action.status = "error" if action.fails else "success"
        action.finished = action.started + timedelta(seconds=action.duration)
        if action.transfer is not None:
            image, region = action.transfer
            alive = self.snapshots.get(image.id) is image
            if alive and not action.fails and region not in (image.region, *image.copies):
                image.copies.append(region)
            return
        if action.powers is not None and not action.fails:
            server = self.servers.get(action.server_id or 0)
            if server is not None:
                server.status = action.powers
        if action.boots is not None:
            server = self.servers.get(action.server_id or 0)
            if server is not None and server.status == "starting":
                server.status = "off" if action.fails else action.boots
        snapshot = action.snapshot
        if snapshot is None:
            return
        if action.fails:
            self.snapshots.pop(snapshot.id, None)
            return
        snapshot.status = "available"
        self.snapshots[snapshot.id] = snapshot

    def snapshot_ids_by_server(self, account: Account) -> dict[int, list[int]]:
        """Server id -> its snapshots' ids, by id; kept (`kept`), so shared: do not change it."""

        def build() -> dict[int, list[int]]:
            index: dict[int, list[int]] = {}
            for snapshot in self.snapshots_of(account):
                if snapshot.server_id is not None:
                    index.setdefault(snapshot.server_id, []).append(snapshot.id)
            return index

        return self.kept(account, "snapshot ids by server", build)

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        del self.snapshots[snapshot.id]

    def register_tag(self, account: Account, tag: str) -> str:
        """Create a DigitalOcean tag if new; return its canonical spelling (case-stable)."""
        return account.tags.setdefault(tag.lower(), tag)

    # -- JSON form -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        with self.lock:
            self.advance()
            return {
                "accounts": [
                    {
                        "name": a.name,
                        "provider": a.provider,
                        "tokens": list(a.tokens),
                        **({"rate_limit": a.rate_limit} if a.rate_limit else {}),
                        **({"burst_limit": a.burst_limit} if a.burst_limit is not None else {}),
                        **({"tags": sorted(a.tags.values())} if a.tags else {}),
                        **(
                            {"snapshot_limit": a.snapshot_limit}
                            if a.snapshot_limit is not None
                            else {}
                        ),
                        **({"boot_seconds": a.boot_seconds} if a.boot_seconds is not None else {}),
                        **({"server_limit": a.server_limit} if a.server_limit is not None else {}),
                        **({"pricing": dict(a.pricing)} if a.pricing else {}),
                    }
                    for a in self.accounts.values()
                ],
                "servers": [
                    _server_dict(s, self.accounts[s.account]) for s in self.servers.values()
                ],
                "snapshots": [
                    _snapshot_dict(s, self.accounts[s.account], self.servers.get(s.server_id or 0))
                    for s in self.snapshots.values()
                ],
                "telegram": {"bots": [{"token": t, "username": u} for t, u in self.bots.items()]},
                **(
                    {"volumes": [_volume_dict(v) for v in self.volumes.values()]}
                    if self.volumes
                    else {}
                ),
                **(
                    {
                        "volume_snapshots": [
                            _volume_snapshot_dict(s) for s in self.volume_snapshots.values()
                        ]
                    }
                    if self.volume_snapshots
                    else {}
                ),
            }

    def load(self, data: dict) -> None:
        """Replace everything with the JSON form `data` (running actions are dropped)."""
        with self.lock:
            self.accounts.clear()
            self.servers.clear()
            self.snapshots.clear()
            self.actions.clear()
            self._running.clear()
            self._account_actions.clear()
            self.bots.clear()
            self.volumes.clear()
            self.volume_snapshots.clear()
            self._buckets.clear()
            self._windows.clear()
            for item in data.get("accounts", []):
                account = self.add_account(
                    item["name"],
                    item["provider"],
                    item["tokens"],
                    rate_limit=item.get("rate_limit"),
                    burst_limit=item.get("burst_limit"),
                    snapshot_limit=item.get("snapshot_limit"),
                    boot_seconds=item.get("boot_seconds"),
                    server_limit=item.get("server_limit"),
                    pricing=item.get("pricing"),
                )
                for tag in item.get("tags", []):
                    self.register_tag(account, tag)
            for item in data.get("servers", []):
                self.add_server(**item)
            for item in data.get("snapshots", []):
                self.add_snapshot(**item)
            for item in data.get("volumes", []):
                self.add_volume(**item)
            for item in data.get("volume_snapshots", []):
                self.add_volume_snapshot(**item)
            for bot in data.get("telegram", {}).get("bots", []):
                self.add_bot(bot["token"], bot.get("username", "sandbox_bot"))

    @classmethod
    def from_dict(cls, data: dict, **kwargs) -> State:
        state = cls(**kwargs)
        state.load(data)
        return state


def _server_dict(server: Server, account: Account) -> dict:
    out: dict = {"account": server.account, "id": server.id, "name": server.name}
    if account.provider == "hetzner":
        out["labels"] = dict(server.labels)
    else:
        out["tags"] = list(server.tags)
    if server.ipv6 is not None:
        out["ipv6"] = server.ipv6
    out["region"] = server.region
    out["created"] = format_time(server.created)
    if server.snapshot_size_gigabytes != DEFAULT_SIZE_GIGABYTES:
        out["snapshot_size_gigabytes"] = server.snapshot_size_gigabytes
    if server.machine_type != DEFAULT_MACHINE_TYPE[account.provider]:
        out["machine_type"] = server.machine_type
    if server.status != "running":
        out["status"] = server.status
    if server.image_id is not None:
        out["image_id"] = server.image_id
    if not server.public_ipv4:
        out["public_ipv4"] = False
    if server.networks:
        out["networks"] = list(server.networks)
    if server.protected:
        out["protected"] = True
    return out


def _snapshot_dict(snapshot: Snapshot, account: Account, server: Server | None) -> dict:
    """The JSON form; `min_disk_gb` and `architecture` only where they differ from what
    `add_snapshot` would give it (its server's, else the default type's)."""
    out: dict = {
        "account": snapshot.account,
        "id": snapshot.id,
        "server_id": snapshot.server_id,
        "server_name": snapshot.server_name,
        "name": snapshot.name,
        "created": format_time(snapshot.created),
        "size_gigabytes": snapshot.size_gigabytes,
    }
    if snapshot.min_disk_gb != State._disk(account, server):
        out["min_disk_gb"] = snapshot.min_disk_gb
    if snapshot.architecture != State._architecture(account, server):
        out["architecture"] = snapshot.architecture
    if account.provider == "hetzner":
        out.update(
            labels=dict(snapshot.labels),
            protected=snapshot.protected,
            status=snapshot.status,
            type=snapshot.type,
        )
    else:
        out["tags"] = list(snapshot.tags)
        if snapshot.copies:
            out["copies"] = list(snapshot.copies)
    return out


def _volume_dict(volume: Volume) -> dict:
    return {
        "account": volume.account,
        "id": volume.id,
        "name": volume.name,
        "region": volume.region,
        "size_gigabytes": volume.size_gigabytes,
        "droplet_ids": list(volume.droplet_ids),
        "created": format_time(volume.created),
    }


def _volume_snapshot_dict(snapshot: VolumeSnapshot) -> dict:
    return {
        "account": snapshot.account,
        "id": snapshot.id,
        "volume_id": snapshot.volume_id,
        "name": snapshot.name,
        "created": format_time(snapshot.created),
        "tags": list(snapshot.tags),
        "size_gigabytes": snapshot.size_gigabytes,
        "region": snapshot.region,
    }
