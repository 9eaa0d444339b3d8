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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from .ratelimit import SlidingWindow, TokenBucket

T = TypeVar("T")
PROVIDERS = ("digitalocean", "hetzner")
DEFAULT_RATE_LIMIT = {"digitalocean": 5000, "hetzner": 3600}
DEFAULT_REGION = {"digitalocean": "nyc3", "hetzner": "fsn1"}
DEFAULT_SIZE_GIGABYTES = 2.5


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

    edits = 0
    """Changes of any snapshot's `type` or `status` (not a field: a class-wide counter), which
    listings kept by `State.kept` filter on."""

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in _FILTERED_FIELDS:
            Snapshot.edits += 1


_FILTERED_FIELDS = frozenset({"type", "status"})


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
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.action_seconds = action_seconds
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
        self._running: dict[int, Action] = {}
        self._account_actions: dict[str, list[Action]] = {}
        """Account name -> its actions by id (ids only grow, so appending keeps the order)."""
        self.bots: dict[str, str] = {}
        """Telegram bot token -> bot username."""
        self._buckets: dict[str, TokenBucket] = {}
        self._windows: dict[str, SlidingWindow] = {}
        self._next_id = {"snapshot": 100_000_001, "action": 900_000_001, "server": 1_000_001}
        self.actions_oldest_first = False
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
    ) -> Account:
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}, not {provider!r}")
        if burst_limit is not None and provider != "digitalocean":
            raise ValueError(
                "burst_limit is DigitalOcean's per-minute limit; Hetzner documents none"
            )
        with self.lock:
            account = Account(name, provider, list(tokens), rate_limit, burst_limit)
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
    ) -> Server:
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
            )
            self.servers[server.id] = server
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
    ) -> Snapshot:
        """Seed a finished snapshot (or a Hetzner image stuck in `creating`).

        `server_id` may name a server that no longer exists (an orphan); give `server_name` then.
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
            )
            self.snapshots[snapshot.id] = snapshot
            return snapshot

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
        """Finish every running action whose time is up."""
        now = self.monotonic()
        for action in [a for a in self._running.values() if a.deadline <= now]:
            del self._running[action.id]
            self._finish(action)

    def _finish(self, action: Action) -> None:
        action.status = "error" if action.fails else "success"
        action.finished = action.started + timedelta(seconds=action.duration)
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
                    }
                    for a in self.accounts.values()
                ],
                "servers": [
                    _server_dict(s, self.accounts[s.account]) for s in self.servers.values()
                ],
                "snapshots": [
                    _snapshot_dict(s, self.accounts[s.account]) for s in self.snapshots.values()
                ],
                "telegram": {"bots": [{"token": t, "username": u} for t, u in self.bots.items()]},
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
            self._buckets.clear()
            self._windows.clear()
            for item in data.get("accounts", []):
                account = self.add_account(
                    item["name"],
                    item["provider"],
                    item["tokens"],
                    rate_limit=item.get("rate_limit"),
                    burst_limit=item.get("burst_limit"),
                )
                for tag in item.get("tags", []):
                    self.register_tag(account, tag)
            for item in data.get("servers", []):
                self.add_server(**item)
            for item in data.get("snapshots", []):
                self.add_snapshot(**item)
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
        if server.ipv6 is not None:
            out["ipv6"] = server.ipv6
    else:
        out["tags"] = list(server.tags)
    out["region"] = server.region
    out["created"] = format_time(server.created)
    if server.snapshot_size_gigabytes != DEFAULT_SIZE_GIGABYTES:
        out["snapshot_size_gigabytes"] = server.snapshot_size_gigabytes
    return out


def _snapshot_dict(snapshot: Snapshot, account: Account) -> dict:
    out: dict = {
        "account": snapshot.account,
        "id": snapshot.id,
        "server_id": snapshot.server_id,
        "server_name": snapshot.server_name,
        "name": snapshot.name,
        "created": format_time(snapshot.created),
        "size_gigabytes": snapshot.size_gigabytes,
    }
    if account.provider == "hetzner":
        out.update(
            labels=dict(snapshot.labels),
            protected=snapshot.protected,
            status=snapshot.status,
            type=snapshot.type,
        )
    else:
        out["tags"] = list(snapshot.tags)
    return out
